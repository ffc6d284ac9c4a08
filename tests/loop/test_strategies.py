"""Repair strategies, repeated answers and --autopilot-stop-on-repeat, through the real loop:
a toy case, programs run in the real sandbox, answers from a list."""

from __future__ import annotations

import pytest

from pytest_autopilot.core.records import Verdict
from pytest_autopilot.executors.local import PythonExecutor
from pytest_autopilot.executors.sandbox import Limits, Sandbox
from pytest_autopilot.loop.repair import Answer, LoopSettings, RepairLoop
from pytest_autopilot.loop.registries import Registries
from pytest_autopilot.oracles import exit_check

WRONG = "```python\nopen('out.txt', 'w').write('41')\n```"
WRONG_REFORMATTED = "```python\nopen('out.txt','w').write( '41' )\n```"  # the same code but for whitespace
RIGHT = "```python\nopen('out.txt', 'w').write('42')\n```"


@pytest.fixture
def run(case, tmp_path, answer_42):
    """``run(answers, ...)``: the toy case through the real loop, the answers served in order."""

    def run_loop(answers, strategy="stateless", stop_on_repeat=0, code_chars=12_000, oracle=answer_42):
        asked = []

        def ask(messages, meta):
            asked.append(([dict(m) for m in messages], dict(meta)))
            return Answer(answers[len(asked) - 1])

        registry = Registries()
        registry.oracle("answer_42", oracle)
        settings = LoopSettings(4, 2000, "first", Limits(timeout_s=30), strategy, stop_on_repeat, code_chars)
        sandbox = Sandbox(Limits(timeout_s=30), base_dir=tmp_path / "work")
        loop = RepairLoop(case, ask, PythonExecutor(sandbox), settings, registries=registry)
        return loop.run(), asked

    return run_loop


def test_stateless_sends_one_message_with_the_task_the_code_and_the_error(run):
    result, asked = run([WRONG, RIGHT])
    assert result.strict_success
    (first, _), (second, meta) = asked
    assert first == [{"role": "user", "content": "Write 42 to out.txt."}]
    assert len(second) == 1 and second[0]["role"] == "user"
    assert second[0]["content"].startswith("Write 42 to out.txt.\nPREVIOUS:\n```python\nopen('out.txt', 'w').write('41')")
    assert "out.txt holds '41', expected 42" in second[0]["content"]
    assert meta == {"step_key": "code", "attempt": 2, "strategy": "stateless"}


def test_conversation_keeps_the_chat_with_the_answer_as_an_assistant_turn(run):
    result, asked = run([WRONG, WRONG_REFORMATTED, RIGHT], strategy="conversation")
    assert result.strict_success
    third, meta = asked[2]
    assert [m["role"] for m in third] == ["user", "assistant", "user", "assistant", "user"]
    assert third[0]["content"] == "Write 42 to out.txt."
    assert third[1]["content"] == WRONG and third[3]["content"] == WRONG_REFORMATTED
    assert third[2]["content"].startswith("FEEDBACK 1:") and third[4]["content"].startswith("FEEDBACK 2:")
    assert "out.txt holds '41'" in third[4]["content"]
    assert meta["strategy"] == "conversation"
    assert result.attempts[2].prompt == third[4]["content"]  # the attempt records the turn it answered


def test_resample_asks_the_original_prompt_again_without_feedback(run):
    result, asked = run([WRONG, RIGHT], strategy="resample")
    assert result.strict_success
    assert [messages for messages, _ in asked] == [[{"role": "user", "content": "Write 42 to out.txt."}]] * 2


def test_an_answer_repeating_earlier_code_is_flagged_ignoring_whitespace(run):
    result, _ = run([WRONG, WRONG_REFORMATTED, WRONG, RIGHT])
    assert [a.repeated for a in result.attempts] == [False, True, True, False]
    assert result.strict_success and all(a.stopped is None for a in result.attempts)


def test_stop_on_repeat_ends_the_step_and_says_why(run):
    result, asked = run([WRONG, WRONG_REFORMATTED, RIGHT, RIGHT], stop_on_repeat=2)
    assert len(asked) == 2 and not result.strict_success
    assert result.attempts[-1].stopped == "stopped: 2 identical answers (--autopilot-stop-on-repeat 2)"


def test_error_feedback_shows_the_programs_stderr_once(run, answer_42):
    def ran_and_answered(ctx) -> Verdict:  # the shared exit check restates the stderr in its detail
        return Verdict.from_checks("answer_42", [exit_check(ctx.execution), *answer_42(ctx).checks])

    crash = "```python\nraise RuntimeError('marker-' + 'xyz')\n```"
    result, asked = run([crash, RIGHT], oracle=ran_and_answered)
    repair = asked[1][0][0]["content"]
    assert repair.count("RuntimeError: marker-xyz") == 1
    assert "exit code 1; stderr:" in result.attempts[0].strict.checks[0].detail  # the report keeps the detail
    assert "check value failed: out.txt holds None" in repair  # other checks are still fed back


def test_repair_prompts_bound_the_previous_code_and_say_what_was_cut(run):
    huge = "```python\n" + "x = 1  # padding\n" * 5000 + "open('out.txt', 'w').write('41')\n```"
    result, asked = run([huge, RIGHT], code_chars=2000)
    repair = asked[1][0][0]["content"]
    assert len(repair) < 2000 + 1000 and "characters omitted ..." in repair
    assert "write('41')" in repair  # the tail survives: where the program ends
    assert [a.prompt_chars for a in result.attempts] == [len("Write 42 to out.txt."), len(repair)]


def test_an_answer_without_code_is_quoted_as_a_short_excerpt(run):
    prose = "I would rather explain. " * 100_000  # 2.4 MB, no code block
    _, asked = run([prose, RIGHT])
    repair = asked[1][0][0]["content"]
    assert len(repair) < 4000 and "characters omitted ..." in repair


def test_conversation_bounds_the_models_own_turn(run):
    prose = "No code today. " * 10_000
    result, asked = run([prose, RIGHT], strategy="conversation", code_chars=1500)
    assistant = asked[1][0][1]
    assert assistant["role"] == "assistant" and len(assistant["content"]) <= 1500
    assert result.attempts[1].prompt_chars == sum(len(m["content"]) for m in asked[1][0])
