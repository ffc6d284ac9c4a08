"""A pipeline's steps (issue 23, the end-to-end case): a step's declared ``outputs`` start every later step's
sandbox as this run's accepted program wrote them (never a reference's), one it did not write
fails the step, and a step may run on an executor of its own. Through the real loop: programs
run in the real sandbox, answers from a list."""

from __future__ import annotations

import pytest

from pytest_autopilot.cases.spec import load_case
from pytest_autopilot.core.errors import HarnessError
from pytest_autopilot.core.records import Category, Check, Verdict
from pytest_autopilot.executors.local import PythonExecutor
from pytest_autopilot.executors.sandbox import Limits, Sandbox
from pytest_autopilot.loop.registries import Registries
from pytest_autopilot.loop.repair import Answer, LoopSettings, RepairLoop

# make writes value.txt (and scratch.txt, not declared); use copies value.txt to out.txt, which must hold 42
CASE = """\
stage: DP
description: a two-step pipeline
steps:
  - name: make
    prompt: task.j2
    outputs: [data/value.txt]
    oracle: {name: ran}
  - name: use
    prompt: task.j2
    {use_executor}
    oracle: {name: answer_42}
solutions:
  reference: {make: make.py, use: use.py}
standin:
  - {make: [reference], use: [reference]}
"""
MAKE_42 = "```python\nimport os\nos.makedirs('data')\nopen('data/value.txt', 'w').write('42')\nopen('scratch.txt', 'w').write('x')\n```"
MAKE_41 = MAKE_42.replace("'42'", "'41'")
MAKE_NOTHING = "```python\nprint('forgot the file')\n```"
USE = ("```python\nimport os\nassert not os.path.exists('scratch.txt'), 'an undeclared file was passed on'\n"
       "open('out.txt', 'w').write(open('data/value.txt').read())\n```")


def _case(tmp_path, use_executor: str = ""):
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "task.j2").write_text("Do the step. Files: {{ inputs | join(', ') }}")
    (tmp_path / "make.py").write_text("open('data/value.txt', 'w').write('42')\n")  # the reference: never laid out
    (tmp_path / "use.py").write_text("")
    (tmp_path / "case.yaml").write_text(CASE.replace("{use_executor}", use_executor))
    return load_case(tmp_path / "case.yaml", prompts)


def _ran(ctx) -> Verdict:
    return Verdict.from_checks("ran", [Check("exit_code_0", ctx.execution.returncode == 0, ctx.execution.stderr[-300:])])


class _Recording(PythonExecutor):
    """The python executor, noting the input files of each run it does."""

    def __init__(self, sandbox):
        super().__init__(sandbox)
        self.runs: list[list[str]] = []

    def execute(self, code, workdir, files, limits):
        self.runs.append(sorted(files))
        return super().execute(code, workdir, files, limits)


def _loop(case, answer_42, tmp_path, answers, make_executor=None):
    registry = Registries()
    registry.oracle("answer_42", answer_42)
    registry.oracle("ran", _ran)
    served = iter(answers)
    prompts: list[str] = []

    def ask(messages, meta):
        prompts.append(messages[-1]["content"])
        return Answer(next(served))

    executor = _Recording(Sandbox(Limits(timeout_s=30), base_dir=tmp_path / "work"))
    settings = LoopSettings(2, 2000, "first", Limits(timeout_s=30))
    loop = RepairLoop(case, ask, executor, settings, registries=registry, make_executor=make_executor)
    return loop, executor, prompts


def test_a_later_step_starts_with_what_this_runs_earlier_step_wrote(tmp_path, answer_42):
    case = _case(tmp_path)
    loop, executor, prompts = _loop(case, answer_42, tmp_path, [MAKE_41, USE, USE])
    result = loop.run()
    # the use step copied this run's 41, not the reference's 42: it fails, twice
    assert not result.strict_success
    assert [(a.step, a.strict_passed) for a in result.attempts] == [("make", True), ("use", False), ("use", False)]
    assert "out.txt holds '41'" in result.attempts[-1].strict.summary()
    assert executor.runs == [[], ["data/value.txt"], ["data/value.txt"]]  # only the declared file goes on
    assert "Files: data/value.txt" in prompts[1]  # and the step's prompt may name it

    loop, _executor, _prompts = _loop(case, answer_42, tmp_path, [MAKE_42, USE])
    assert loop.run().strict_success


def test_a_declared_output_the_program_did_not_write_fails_its_step(tmp_path, answer_42):
    loop, executor, _prompts = _loop(_case(tmp_path), answer_42, tmp_path, [MAKE_NOTHING, MAKE_NOTHING])
    result = loop.run()
    assert not result.strict_success and (result.stopped_at_step, result.stopped_step) == (1, "make")
    last = result.attempts[-1]
    assert last.category == Category.ARTIFACT_MISSING
    assert [c.name for c in last.strict.failed_checks] == ["outputs_written"]
    assert "data/value.txt not written: the next steps start from this file" in last.strict.summary()
    assert len(executor.runs) == 2  # the use step never ran


def test_a_step_runs_on_the_executor_it_names(tmp_path, answer_42):
    case = _case(tmp_path, "executor: tagged")
    made: dict[str, _Recording] = {}

    def make_executor(name):
        assert name not in made, "an executor is built once per loop"
        made[name] = _Recording(Sandbox(Limits(timeout_s=30), base_dir=tmp_path / "work"))
        return made[name]

    loop, executor, _prompts = _loop(case, answer_42, tmp_path, [MAKE_42, USE], make_executor=make_executor)
    assert loop.run().strict_success
    assert list(made) == ["tagged"]
    assert (len(executor.runs), len(made["tagged"].runs)) == (1, 1)  # make on the case's, use on its own


def test_a_step_naming_an_executor_needs_a_way_to_build_it(tmp_path, answer_42):
    loop, _executor, _prompts = _loop(_case(tmp_path, "executor: tagged"), answer_42, tmp_path, [MAKE_42, USE])
    with pytest.raises(HarnessError, match="step use runs on executor 'tagged', but this loop was given no way"):
        loop.run()
