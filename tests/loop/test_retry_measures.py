"""What retries did (issue 22): an answer without code repeats an earlier one when its text does
(4 byte-identical cut answers were not counted), and an attempt is *stuck* when its first error
is the previous attempt's. Through the real loop: the toy case, programs run in the real sandbox,
answers from a list."""

from __future__ import annotations

from pytest_autopilot.executors.local import PythonExecutor
from pytest_autopilot.executors.sandbox import Limits, Sandbox
from pytest_autopilot.loop.repair import Answer, LoopSettings, RepairLoop
from pytest_autopilot.loop.stuck import first_error
from pytest_autopilot.loop.registries import Registries

RIGHT = "```python\nopen('out.txt', 'w').write('42')\n```"
CUT = "Here is the program:\n\n```python\nimport os\nwith open('out.txt', 'w') as f:\n    f.wr"  # cut by max_tokens
WRITES_41 = "```python\nopen('out.txt', 'w').write('41')\n```"
WRITES_41_OTHERWISE = "```python\nvalue = 41\nopen('out.txt', 'w').write(str(value))\n```"
NAME_ERROR = "```python\nprint(undefined_name)\n```"
NAME_ERROR_LATER = "```python\nimport sys\n\n\nprint(undefined_name)\n```"  # the same error, another line


def _attempts(case, answer_42, tmp_path, answers):
    registry = Registries()
    registry.oracle("answer_42", answer_42)
    served = iter(answers)
    settings = LoopSettings(len(answers), 2000, "first", Limits(timeout_s=30))
    loop = RepairLoop(case, lambda messages, meta: Answer(next(served)), PythonExecutor(
        Sandbox(Limits(timeout_s=30), base_dir=tmp_path / "work")), settings, registries=registry)
    return loop.run().attempts


def test_answers_without_code_repeat_when_their_text_does(case, answer_42, tmp_path):
    attempts = _attempts(case, answer_42, tmp_path, [CUT, CUT, CUT + "\n", RIGHT])
    assert [a.code is None for a in attempts] == [True, True, True, False]
    assert [a.repeated for a in attempts] == [False, True, True, False]


def test_a_retry_with_the_previous_attempts_first_error_is_stuck(case, answer_42, tmp_path):
    attempts = _attempts(case, answer_42, tmp_path, [WRITES_41, WRITES_41_OTHERWISE, NAME_ERROR, NAME_ERROR_LATER, RIGHT])
    assert [a.stuck for a in attempts] == [False, True, False, True, False]
    assert attempts[0].first_error == "check value failed: out.txt holds '41', expected 42"
    assert attempts[2].first_error == attempts[3].first_error == "NameError: name 'undefined_name' is not defined"
    assert attempts[-1].first_error is None  # passed
    assert not any(a.repeated for a in attempts)  # different code each time: stuck is not repeated


def test_the_first_error_of_a_build_leaves_out_where_it_is():
    first = "sketch.ino:12:5: error: 'x' was not declared in this scope\nsketch.ino:40:1: error: expected ';'"
    again = "Exit code 1.\nstderr:\nsketch.ino:31:9: error: 'x' was not declared in this scope"
    assert first_error(first) == first_error(again) == "error: 'x' was not declared in this scope"
    assert first_error("") is None
