"""What the retries of a group of runs did (``results.groups``): a retry is an attempt after the
first of its step/item, the only one that can repeat an earlier answer or be stuck on the
previous attempt's first error (``loop.stuck``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pytest_autopilot.core.records import RunRecord
from pytest_autopilot.results.frames import RUN_TOTAL_STEP


@dataclass(frozen=True)
class RetryCounts:
    retries: int
    repeated: int  # the code (no code: the answer text) equals an earlier answer's of the step
    repeated_rate: float  # over retries; NaN without retries or when no answer was recorded (imports)
    stuck: int  # the same first error as the previous attempt of the step
    stuck_rate: float  # over retries; NaN without retries or when no first error was recorded


def retry_counts(recs: list[RunRecord]) -> RetryCounts:
    calls = [a for r in recs for a in r.attempts if a.step != RUN_TOTAL_STEP]
    retries = sum(a.number > 1 for a in calls)
    repeated = sum(bool(a.repeated) for a in calls)
    stuck = sum(bool(a.stuck) for a in calls)
    answered = any(a.code is not None or a.response is not None for a in calls)  # imports carry neither
    judged = any(a.first_error is not None for a in calls)  # reports from before the stuck measure: none

    def rate(count: int, known: bool) -> float:
        return count / retries if retries and known else math.nan

    return RetryCounts(retries, repeated, rate(repeated, answered), stuck, rate(stuck, judged))
