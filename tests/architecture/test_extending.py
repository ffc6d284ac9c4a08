"""The "how to add" recipes of ARCHITECTURE.md, each done once with a throwaway part: an
executor and an oracle registered from a conftest, a stage added to the stage table, a board
added as one YAML file."""

from __future__ import annotations

import json

import pytest

from pytest_autopilot.core.stages import STAGES, Stage

EXTENDING_CONFTEST = """\
from pytest_autopilot.core.records import Check, Verdict
from pytest_autopilot.executors.local import PythonExecutor


class TaggingExecutor(PythonExecutor):
    # a throwaway executor: runs like 'python' and says it was the one that ran
    def execute(self, code, workdir, files, limits):
        result = super().execute(code, workdir, files, limits)
        result.isolation["executor"] = "tagging"
        return result


def seen(ctx):
    # a throwaway oracle: the answer file, plus what the loop handed it
    path = ctx.workdir / "out.txt"
    checks = [Check("value", path.is_file() and path.read_text().strip() == "42", "out.txt")]
    if ctx.params.get("board"):
        checks.append(Check("board", ctx.board is not None and ctx.board.name == ctx.params["board"], str(ctx.board)))
    return Verdict.from_checks("seen", checks)


def pytest_autopilot_register(registry):
    registry.executor("tagging", lambda ctx: TaggingExecutor(ctx.sandbox))
    registry.oracle("seen", seen)
    registry.oracle("toy_answer", seen)
"""


def _case(toy_project, **fields) -> None:
    case = toy_project / "cases/toy/answer.yaml"
    text = case.read_text().replace("oracle: {name: toy_answer, params: {expected: \"42\"}}",
                                    "oracle: {name: seen, params: {board: %s}}" % fields.pop("expect_board", "null"))
    for key, value in fields.items():
        text = text.replace(f"{key}: DP\n", f"{key}: {value}\n") if key == "stage" else text + f"{key}: {value}\n"
    case.write_text(text)
    (toy_project / "conftest.py").write_text(EXTENDING_CONFTEST)


def _runs(pytester, *args) -> list[dict]:
    # in-process (tests/conftest.py imported litellm beforehand, so the run's import of it is kept)
    result = pytester.runpytest("cases", "-p", "no:xdist", "-k", "r02", "--autopilot-runs", "2",
                                "--record-mode", "once", "--autopilot-run-id", "ext", *args)
    result.assert_outcomes(passed=1)
    return json.loads((pytester.path / "reports/ext/results.json").read_text())["runs"]


def test_add_an_executor_and_an_oracle_from_a_conftest(toy_project, pytester):
    _case(toy_project, executor="tagging")
    (run,) = _runs(pytester)
    attempt = run["attempts"][0]
    assert attempt["execution"]["isolation"]["executor"] == "tagging"
    assert attempt["strict"]["oracle"] == "seen"


def test_a_registration_stays_in_its_session(toy_project, pytester):
    _case(toy_project, executor="tagging")
    (toy_project / "conftest.py").write_text("")  # another project: nothing registered
    result = pytester.runpytest("cases", "--co", "-q")
    result.stdout.fnmatch_lines(["*answer.yaml: field executor: unknown executor 'tagging'; known: *python*"])


THROWAWAY_STAGE = """
from pytest_autopilot.core.stages import STAGES, Stage
STAGES["Toy"] = Stage("Toy", "toy_stage", 6, "exit_code", "tagging", "a throwaway stage")  # as one line in the table
"""


def test_add_a_stage_with_one_table_entry(toy_project, pytester, monkeypatch):
    monkeypatch.setitem(STAGES, "Toy", Stage("Toy", "toy_stage", 6, "exit_code", "tagging", "a throwaway stage"))
    _case(toy_project, stage="Toy")
    result = pytester.runpytest("cases", "--co", "-q", "-m", "toy_stage", "--autopilot-runs", "2")
    result.stdout.fnmatch_lines(["*answer[[]scripted-standin-r01[]]*", "*2 tests collected*"])
    (toy_project / "conftest.py").write_text(THROWAWAY_STAGE + EXTENDING_CONFTEST)  # the subprocess's table
    (run,) = _runs(pytester, "-m", "toy_stage")
    assert run["stage"] == "Toy"
    assert run["attempts"][0]["execution"]["isolation"]["executor"] == "tagging"  # the stage's default executor
    assert run["attempts"][0]["legacy"]["checks"][0]["name"] == "exit_code_0"  # the stage's legacy check


def test_add_a_board_with_one_file(toy_project, pytester):
    (toy_project / "hardware").mkdir()
    (toy_project / "hardware/toy_board.yaml").write_text(
        "display_name: Toy board\narchitecture: riscv32\nmemory: {flash_kb: 64, ram_kb: 16}\ncapabilities: [python]\n")
    _case(toy_project, board="toy_board", expect_board="toy_board")
    (run,) = _runs(pytester)
    assert [c["name"] for c in run["attempts"][0]["strict"]["checks"]] == ["value", "board"]


@pytest.mark.parametrize("field, value, message", [
    ("executor", "teleport", "field executor: unknown executor 'teleport'"),
    ("board", "no_such_board", "field board: no board 'no_such_board'"),
])
def test_unknown_parts_are_one_line_collection_errors(toy_project, pytester, field, value, message):
    _case(toy_project, **{field: value})
    result = pytester.runpytest("cases", "--co", "-q")
    result.stdout.fnmatch_lines([f"*answer.yaml: {message}*"])
    assert "Traceback" not in result.stdout.str()
