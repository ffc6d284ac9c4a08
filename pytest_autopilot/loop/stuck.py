"""The stuck measure: an attempt is *stuck* when its first error is the same as the previous
attempt's of the same step -- the repair changed nothing that matters. The first error is the
one line of the feedback that names what went wrong first: a Python traceback's exception, a
compiler's first ``error:`` line (its file and line number left out), else the first failed
check, else the feedback's first line; volatile details normalised as in repair prompts."""

from __future__ import annotations

import re

from pytest_autopilot.core.records import Attempt
from pytest_autopilot.loop.normalise import normalise_error

FIRST_ERROR_CHARS = 300
_EXCEPTION = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit|Interrupt)\b.*$")
_COMPILER = re.compile(r"\b(?:fatal )?error\b\s*:", re.I)
_WHERE = re.compile(r"^\S+?:\d+(?::\d+)?:\s*")  # file:line[:col]: of a compiler or linker message
_CHECK = re.compile(r"^check \S+ failed:")


def first_error(feedback: str) -> str | None:
    """The feedback's first error as one normalised line (None: no feedback, i.e. it passed)."""
    text = normalise_error(feedback or "", len(feedback or "") + 1)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    if any(line.startswith("Traceback (most recent call last)") for line in lines):
        raised = [line for line in lines if _EXCEPTION.match(line)]
        if raised:
            return raised[-1][:FIRST_ERROR_CHARS]  # the exception the traceback ends with
    for line in lines:
        if _COMPILER.search(line):
            return _WHERE.sub("", line)[:FIRST_ERROR_CHARS]
    for line in lines:
        if _CHECK.match(line) or _EXCEPTION.match(line):
            return line[:FIRST_ERROR_CHARS]
    return lines[0][:FIRST_ERROR_CHARS]


def note_first_error(attempt: Attempt, feedback: str, previous: Attempt | None) -> None:
    """Record the attempt's first error, and whether it is the previous attempt's of the step."""
    attempt.first_error = None if attempt.strict_passed else first_error(feedback)
    attempt.stuck = bool(previous is not None and attempt.first_error is not None
                         and attempt.first_error == previous.first_error)
