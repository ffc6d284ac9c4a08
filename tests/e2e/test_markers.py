"""Markers on hardware items: a case whose programs run on a board without a simulator, or that
requires targets, is ``hil``; a Coral one is also ``coral``; ``-m "not hil"`` deselects them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
HIL_CASES = ["cases/ardsg/nano33_colour_paper.yaml", "cases/pysg/sheeps_paper_coral.yaml"]

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _collected_cases(tmp_path, *args) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "pytest", "cases", "--co", "-q", "-p", "no:cacheprovider",
                          "--autopilot-reports-dir", str(tmp_path / "reports"), *args],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return sorted({line.split("::")[0] for line in out.stdout.splitlines() if "::" in line})


def test_shipped_hardware_cases_are_marked(tmp_path):
    assert _collected_cases(tmp_path, "-m", "hil") == HIL_CASES
    assert _collected_cases(tmp_path, "-m", "coral") == ["cases/pysg/sheeps_paper_coral.yaml"]
    assert _collected_cases(tmp_path, "-m", "hil", "--autopilot-self-test") == HIL_CASES  # self-test items too
    rest = _collected_cases(tmp_path, "-m", "not hil")
    assert not set(HIL_CASES) & set(rest)
    # a board named only for its budgets or software, or a simulated one, is not hardware in the loop
    for case in ("cases/mc/fruit_full_int8_mcu.yaml", "cases/pysg/sheeps_paper_faithful.yaml",
                 "cases/pysg/shapes_video_edgetpu.yaml", "cases/ardsg/uno_colour_sim.yaml"):
        assert case in rest


def test_targets_and_boards_without_simulator_mark_a_project_case(toy_project, pytester, write_file):
    case = (toy_project / "cases/toy/answer.yaml").read_text()
    write_file(toy_project, "cases/toy/rig.yaml", case + "requires: {targets: [bench_rig]}\n")
    write_file(toy_project, "cases/toy/flashed.yaml", case + "board: my_board\nexecutor: my-board\n")
    write_file(toy_project, "cases/toy/budgets.yaml", case + "board: my_board\n")  # runs here: not hil
    write_file(toy_project, "cases/toy/tpu.yaml", case + "requires: {toolchains: [python, coral]}\n")
    write_file(toy_project, "hardware/my_board.yaml", """\
        display_name: My board (STM32F411)
        architecture: arm-cortex-m4f
        memory: {flash_kb: 512, ram_kb: 128}
        capabilities: [tflm, serial]
        """)
    conftest = toy_project / "conftest.py"
    conftest.write_text(conftest.read_text().replace(
        "def pytest_autopilot_register(registry):\n",
        "def pytest_autopilot_register(registry):\n    registry.executor('my-board', lambda ctx: None)\n"))

    def selected(marker: str) -> list[str]:
        result = pytester.runpytest("cases", "--co", "-q", "-m", marker)
        return sorted({line.split("::")[0] for line in result.stdout.lines if "::" in line})

    assert selected("hil") == ["cases/toy/flashed.yaml", "cases/toy/rig.yaml", "cases/toy/tpu.yaml"]
    assert selected("coral") == ["cases/toy/tpu.yaml"]
    assert selected("not hil") == ["cases/toy/answer.yaml", "cases/toy/budgets.yaml"]
