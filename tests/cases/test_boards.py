"""The board/target registry: shipped boards, budgets, user-added boards, bad files."""

from __future__ import annotations

import pytest

from pytest_autopilot.cases.boards import HardwareError, load_board, load_board_file
from pytest_autopilot.cases.defaults import HARDWARE


def test_shipped_boards_load_with_their_budgets():
    boards = {p.stem: load_board_file(p) for p in sorted(HARDWARE.glob("*.yaml"))}
    assert {"arduino_uno", "nano33ble_sense", "mps2_an385", "raspberry_pi4", "coral_dev_board"} <= set(boards)
    uno = boards["arduino_uno"]
    assert uno.mcu == "atmega328p" and uno.build.fqbn == "arduino:avr:uno" and uno.simulator.kind == "simavr"
    assert uno.model_flash_budget == (32 - 8) * 1024 and uno.model_ram_budget == int((2 - 0.75) * 1024)
    assert boards["nano33ble_sense"].build.fqbn == "arduino:mbed_nano:nano33ble"
    assert boards["mps2_an385"].simulator.machine == "mps2-an385"
    assert boards["raspberry_pi4"].access.ssh.host and "ssh" in boards["raspberry_pi4"].capabilities
    assert "edgetpu" in boards["coral_dev_board"].capabilities


@pytest.mark.parametrize("text, expected", [
    ("display_name: X\narchitecture: avr\n", "field memory: Field required"),
    ("display_name: X\narchitecture: avr\nmemory: {flash_kb: -1, ram_kb: 2}\n", "field memory.flash_kb: Input should be greater than 0"),
    ("display_name: X\narchitecture: avr\nmemory: {flash_kb: 1, ram_kb: 2}\ncolour: red\n", "field colour: unknown field"),
    ("display_name: X\narchitecture: avr\nmemory: {flash_kb: 1, ram_kb: 2}\ncapabilities: [teleport]\n", "field capabilities.0:"),
    ("- just a list\n", "expected a mapping of board fields"),
])
def test_bad_board_file_is_one_line_error(tmp_path, text, expected):
    path = tmp_path / "myboard.yaml"
    path.write_text(text)
    with pytest.raises(HardwareError) as err:
        load_board_file(path)
    message = str(err.value)
    assert str(path) in message and expected in message and "\n" not in message


def test_unknown_board_lists_the_known_ones(tmp_path):
    (tmp_path / "mine.yaml").write_text("display_name: Mine\narchitecture: riscv\nmemory: {flash_kb: 4, ram_kb: 1}\n")
    with pytest.raises(HardwareError, match=r"no board 'yours'.*known: .*arduino_uno.*mine.*add yours.yaml"):
        load_board(tmp_path, "yours")
    assert load_board(tmp_path, "mine").model_flash_budget == 4096


def test_case_refers_to_board_by_name_and_user_adds_one(toy_project, pytester):
    case = toy_project / "cases/toy/answer.yaml"
    case.write_text(case.read_text().replace("stage: DP\n", "stage: DP\nboard: my_board\n"))
    result = pytester.runpytest("cases", "--co", "-q")
    result.stdout.fnmatch_lines(["*answer.yaml: field board: no board 'my_board'*add my_board.yaml to register it*"])
    (toy_project / "hardware").mkdir()
    (toy_project / "hardware/my_board.yaml").write_text(
        "display_name: My board\narchitecture: arm-cortex-m0\nmemory: {flash_kb: 64, ram_kb: 8}\n")
    pytester.runpytest("cases", "--co", "-q").stdout.fnmatch_lines(["*1 test collected*"])


def test_bad_board_file_names_a_misspelt_key_first_and_counts_the_rest(tmp_path):
    # a misspelt key would otherwise show as the missing one it was meant to be
    path = tmp_path / "typo.yaml"
    path.write_text("display_name: X\narchitecture: avr\nmemroy: {flash_kb: 1, ram_kb: 2}\n")
    with pytest.raises(HardwareError) as err:
        load_board_file(path)
    assert str(err.value) == f"{path}: field memroy: unknown field; remove it or check its spelling (+1 more)"


def test_a_project_board_overrides_the_packaged_one_of_the_same_name(tmp_path):
    (tmp_path / "arduino_uno.yaml").write_text("display_name: My Uno\narchitecture: avr\nmemory: {flash_kb: 16, ram_kb: 1}\n")
    assert load_board(tmp_path, "arduino_uno").display_name == "My Uno"
    assert load_board(tmp_path, "mps2_an385").simulator.kind == "qemu"  # not overridden: the packaged board
