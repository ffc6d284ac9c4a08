"""The "how to add" recipes of ARCHITECTURE.md, each done once with a throwaway part: each of the
five registered kinds (an executor, an oracle with its params model, a toolchain requirement, a
legacy check, a repair strategy) registered from a conftest, a stage added to the stage table,
a board added as one YAML file; and the registry's did-you-mean error."""

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

# the other three kinds, added to the same conftest
MORE_PARTS = """
import os
from pydantic import BaseModel, ConfigDict


class SeenParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    board: str | None = None


def wrote_something(execution):
    # a throwaway legacy check: the program printed anything at all
    return Verdict.from_checks("legacy", [Check("printed", bool(execution and execution.stdout.strip()))])


def shout(failed):
    # a throwaway repair strategy: the task again, in capitals, with the attempt number
    return [{"role": "user", "content": f"ATTEMPT {failed.number} FAILED. " + failed.task.upper()}]


_first_parts = pytest_autopilot_register


def pytest_autopilot_register(registry):
    _first_parts(registry)
    registry.oracle("seen", seen, params=SeenParams)
    registry.toolchain("toy_sdk", lambda: os.environ.get("TOY_SDK") != "absent", "pip install toy-sdk")
    registry.legacy_check("wrote_something", wrote_something)
    registry.repair_strategy("shout", shout)
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


def test_add_a_toolchain_a_legacy_check_and_a_repair_strategy_from_a_conftest(toy_project, pytester, monkeypatch):
    _case(toy_project, executor="tagging", requires="{toolchains: [python, toy_sdk]}")
    case = toy_project / "cases/toy/answer.yaml"
    case.write_text(case.read_text().replace("repair: {max_attempts: 2}", "repair: {max_attempts: 2, strategy: [shout]}")
                    .replace("    oracle: {name: seen", "    legacy: wrote_something\n    oracle: {name: seen"))
    (toy_project / "conftest.py").write_text(EXTENDING_CONFTEST + MORE_PARTS)
    # r01's stand-in answers a program writing nothing first: the strategy builds the repair prompt
    result = pytester.runpytest("cases", "-p", "no:xdist", "-k", "r01", "--record-mode", "once",
                                "--autopilot-run-id", "parts")
    result.assert_outcomes(passed=1)
    (run,) = json.loads((pytester.path / "reports/parts/results.json").read_text())["runs"]
    assert run["strategy"] == "shout" and "shout-r01" in run["nodeid"]
    first, second = run["attempts"]
    assert second["prompt"] == "ATTEMPT 1 FAILED. WRITE A PYTHON PROGRAM THAT WRITES 42 TO OUT.TXT. WRITE THE ANSWER\n"
    assert [c["name"] for c in first["legacy"]["checks"]] == ["printed"]  # the registered legacy check judged it
    assert second["execution"]["isolation"]["executor"] == "tagging"
    # the requirement is the registered one: absent, the case is skipped with its install command
    monkeypatch.setenv("TOY_SDK", "absent")
    result = pytester.runpytest("cases", "-p", "no:xdist", "-k", "r01", "--autopilot-missing-toolchain", "skip", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*toolchain 'toy_sdk' is not installed; install it with: pip install toy-sdk*"])


def test_a_registered_params_model_checks_the_case(toy_project, pytester):
    _case(toy_project)
    case = toy_project / "cases/toy/answer.yaml"
    case.write_text(case.read_text().replace("params: {board: null}", "params: {bord: x}"))
    (toy_project / "conftest.py").write_text(EXTENDING_CONFTEST + MORE_PARTS)
    result = pytester.runpytest("cases", "--co", "-q")
    result.stdout.fnmatch_lines(["*answer.yaml: field steps.code.oracle.params.bord: *did you mean 'board'?*"])


@pytest.mark.parametrize("field, line", [
    ("legacy: exit_cod", "field steps.code.legacy: unknown legacy check 'exit_cod'; known: compiles, exit_code, "
                         "wrote_something (or register one in conftest.py); did you mean 'exit_code'?"),
    ("requires: {toolchains: [toy_sdj]}", "field requires.toolchains.0: unknown toolchain 'toy_sdj'; known: *toy_sdk "
                                          "(or register one in conftest.py); did you mean 'toy_sdk'?"),
    ("repair: {strategy: [shuot]}", "field repair.strategy.0: unknown repair strategy 'shuot'; known: conversation, "
                                    "resample, shout, stateless (or register one in conftest.py); did you mean 'shout'?"),
    ("executor: taging", "field executor: unknown executor 'taging'; known: *tagging, warm-pandas, warm-tensorflow "
                         "(or register one in conftest.py); did you mean 'tagging'?"),
])
def test_a_misspelt_part_is_one_line_naming_the_known_ones_and_the_closest(toy_project, pytester, field, line):
    _case(toy_project)
    case = toy_project / "cases/toy/answer.yaml"
    text = case.read_text().replace("repair: {max_attempts: 2}\n", "")
    if field.startswith("legacy"):
        text = text.replace("    oracle: {name: seen", f"    {field}\n    oracle: {{name: seen")
    else:
        text += field + "\n"
    case.write_text(text)
    (toy_project / "conftest.py").write_text(EXTENDING_CONFTEST + MORE_PARTS)
    result = pytester.runpytest("cases", "--co", "-q")
    result.stdout.fnmatch_lines([f"*answer.yaml: {line}"])
    assert "Traceback" not in result.stdout.str()


def test_the_registry_resolves_lazily_and_names_a_missing_dependency():
    from pytest_autopilot.core.errors import ToolchainMissing
    from pytest_autopilot.core.registry import Lazy, Registry, UnknownName

    registry = Registry("widget", {"json": "json:dumps", "absent": Lazy("no_such_module_xyz:thing",
                                                                        needs=("no_such_module_xyz",),
                                                                        install="pip install xyz-widgets")})
    import json

    assert registry.get("json") is json.dumps
    with pytest.raises(ToolchainMissing, match=r"^widget 'absent' needs no_such_module_xyz, which is not installed; "
                                               r"install it with: pip install xyz-widgets$"):
        registry.get("absent")
    with pytest.raises(UnknownName) as info:
        registry.get("jsno")
    assert str(info.value) == ("unknown widget 'jsno'; known: absent, json (or register one in conftest.py); "
                               "did you mean 'json'?")
    registry.add("jsno", len)  # a conftest's part: no import
    assert registry.get("jsno") is len and registry.is_builtin("json") and not registry.is_builtin("jsno")


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
