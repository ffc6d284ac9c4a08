"""Repair strategies: how a failed attempt is fed back. The repair loop is the system under
test, so this varies like the model and each strategy is its own test id.

A strategy is a function ``(failed: FailedAttempt) -> messages`` (the next prompt), looked up by
name in the session's registry (``core.registry``; the built-in ones are declared in ``BUILTIN``,
a conftest adds its own with ``registry.repair_strategy(name, func)``):

- ``stateless``: the paper's single message (task, previous code, error);
- ``conversation``: the chat so far, the previous answer as an assistant turn and the feedback
  as a user turn;
- ``resample``: the original prompt again without feedback (the independent-retries baseline).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Mapping

from pytest_autopilot.core.records import DEFAULT_STRATEGY
from pytest_autopilot.loop.normalise import own_turn, previous_answer

__all__ = ["BUILTIN", "DEFAULT_STRATEGY", "FailedAttempt", "conversation", "resample", "stateless"]

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class FailedAttempt:
    """What a strategy builds the next prompt from."""

    step: Any  # cases.spec.StepSpec: its templates (repair_prompt, feedback_prompt) and language
    messages: Messages  # the prompt the failed answer replied to
    task: str  # the step's first prompt
    number: int  # the failed attempt's number (1-based)
    code: str | None  # the code extracted from the answer (None: there was none)
    text: str  # the whole answer
    error: str  # the feedback: normalised, bounded and fenced (loop.normalise.error_section)
    code_chars: int  # the previous answer is shown up to this many characters
    render: Callable[[str, dict[str, Any]], str]  # render(template, extra): with the step's variables too


def stateless(failed: FailedAttempt) -> Messages:
    repair = failed.render(failed.step.repair_prompt, {
        "task": failed.task, "attempt": failed.number, "error": failed.error,
        "previous_answer": previous_answer(failed.code, failed.text, failed.code_chars, failed.step.language)})
    return [{"role": "user", "content": repair}]


def conversation(failed: FailedAttempt) -> Messages:
    turn = failed.render(failed.step.feedback_prompt, {"attempt": failed.number, "error": failed.error})
    answered = own_turn(failed.text, failed.code_chars)  # the model's own turn, within the same bound
    return [*failed.messages, {"role": "assistant", "content": answered}, {"role": "user", "content": turn}]


def resample(failed: FailedAttempt) -> Messages:
    return [{"role": "user", "content": failed.task}]


# name -> "module:function", copied into each session's registry
BUILTIN: Mapping[str, str] = MappingProxyType({
    name: f"{__name__}:{name}" for name in ("stateless", "conversation", "resample")})
