"""Run records as tables: one row per run (:func:`runs_frame`), one row per attempt (:func:`attempts_frame`).

Only imported at report time, so pandas is imported at module level.

Unknown stays unknown: an attempt whose cost is ``None`` makes the run's cost NaN. A crashed or
interrupted run with no recorded attempts has unknown tokens, cost and latency (the worker may have
called the LLM before it died); a finished run with no attempts (e.g. a harness error before the
first call) spent 0.

Imported runs (the paper baseline, :mod:`pytest_autopilot.results.baseline`) may carry a *run-level
aggregate*: an :class:`~pytest_autopilot.core.records.Attempt` whose ``step`` is :data:`RUN_TOTAL_STEP`.
It is not an LLM call: it holds the run's published totals (tokens, cost, latency). When a run has
one, the run's tokens/cost/latency are the aggregate's (not sums over its attempts), and its
attempt count is the number of its other attempts -- unknown (``<NA>``) when it has none, i.e. the
source did not publish how many generations the run took.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd

from pytest_autopilot.core.records import Category, RunRecord, RunStatus

# ``Attempt.step`` of a run-level aggregate (see the module docstring); not an LLM call.
RUN_TOTAL_STEP = "run_total"

RUN_COLUMNS = [
    "nodeid", "case", "stage", "tier", "model_id", "model", "strategy", "scripted", "repetition", "status",
    "strict_success", "legacy_success", "silent_failure", "stopped_at_step", "steps_total", "stopped_step",
    "attempts", "steps_run", "repairs", "repeated_attempts", "stuck_attempts", "tokens",
    "cost_usd", "latency_s", "duration_s", "truncated_attempts", "transient_retries", "final_category",
    "worker", "host", "error", "archive_file", "study_verdict",
]

ATTEMPT_COLUMNS = [
    "nodeid", "case", "model_id", "strategy", "repetition", "step", "item", "number", "prompt_hash",
    "prompt_chars", "category", "strict_passed", "legacy_passed", "repeated", "stuck", "first_error", "returncode",
    "timed_out", "duration_s", "cpu_wait_s", "tokens", "cost_usd", "latency_s", "truncated", "finish_reason",
    "answer_truncated", "transient_retries", "failed_checks",
    "archive_file", "archived_sha256", "study_verdict",
]

# Runs that did not finish: their attempt list may be missing calls that really happened.
UNFINISHED = (RunStatus.CRASHED, RunStatus.INCOMPLETE)
# Runs without a verdict: those that did not finish, and those a harness or set-up problem
# stopped (status error: a cassette miss, a bad cassette, a harness error). The model never did
# them, so no success rate, interval, comparison or gate counts them (see groups.py).
NO_VERDICT = (*UNFINISHED, RunStatus.ERROR)


def finished(rec: RunRecord) -> bool:
    """Whether the run ended with a verdict (the denominator of every rate)."""
    return rec.status not in NO_VERDICT


def error_category(rec: RunRecord) -> str | None:
    """The category of a run stopped by an error (``cassette_miss``, ...: its message's prefix)."""
    if rec.status != RunStatus.ERROR:
        return None
    prefix = (rec.error or "").split(":", 1)[0].strip()
    return prefix if prefix in Category.ALL else Category.HARNESS_ERROR


def _attempt_rows(records: list[RunRecord]) -> pd.DataFrame:
    """One row per attempt, with ``_run`` = index of the record in ``records``."""
    rows = []
    for run_index, rec in enumerate(records):
        for a in rec.attempts:
            ex = a.execution
            rows.append({
                "_run": run_index,
                "nodeid": rec.nodeid,
                "case": rec.case,
                "model_id": rec.model_id,
                "strategy": rec.strategy,
                "repetition": rec.repetition,
                "step": a.step,
                "item": a.item,
                "number": a.number,
                "prompt_hash": a.prompt_hash,
                "prompt_chars": a.prompt_chars,
                "category": a.category,
                "strict_passed": a.strict_passed,
                "legacy_passed": bool(a.legacy and a.legacy.passed),
                "repeated": bool(a.repeated),
                "stuck": bool(a.stuck),
                "first_error": a.first_error,
                "_step_key": (a.step, a.item),
                "returncode": ex.returncode if ex is not None else None,
                "timed_out": bool(ex.timed_out) if ex is not None else False,
                "duration_s": ex.duration_s if ex is not None else math.nan,
                "cpu_wait_s": math.nan if a.cpu_wait_s is None else float(a.cpu_wait_s),  # None: no CPU step
                "tokens": a.total_tokens,
                "cost_usd": math.nan if a.cost_usd is None else float(a.cost_usd),
                "latency_s": math.nan if a.latency_s is None else float(a.latency_s),
                "truncated": a.truncated,
                "finish_reason": a.finish_reason,
                "answer_truncated": bool(a.answer_truncated),
                "transient_retries": a.transient_retries,
                "failed_checks": ";".join(c.name for c in a.strict.failed_checks) if a.strict else "",
                "archive_file": a.archived_file or (rec.params or {}).get("archive_file"),
                "archived_sha256": a.archived_sha256,
                "study_verdict": (rec.params or {}).get("study_verdict"),
            })
    frame = pd.DataFrame(rows, columns=["_run", *ATTEMPT_COLUMNS, "_step_key"])
    for col in ("_run", "repetition", "number", "transient_retries"):
        frame[col] = frame[col].astype("int64")
    for col in ("returncode", "tokens", "prompt_chars"):  # None: not recorded (older reports, imports)
        frame[col] = frame[col].astype("Int64")
    for col in ("duration_s", "cpu_wait_s", "cost_usd", "latency_s"):
        frame[col] = frame[col].astype("float64")
    for col in ("strict_passed", "legacy_passed", "repeated", "stuck", "timed_out", "answer_truncated"):
        frame[col] = frame[col].astype("bool")
    frame["truncated"] = frame["truncated"].astype("boolean")  # None: could not be determined
    return frame


def attempts_frame(records: Iterable[RunRecord]) -> pd.DataFrame:
    """One row per attempt across all runs, in record then attempt order."""
    return _attempt_rows(list(records))[ATTEMPT_COLUMNS]


def runs_frame(records: Iterable[RunRecord]) -> pd.DataFrame:
    """One row per run (record order), with per-run aggregates over its attempts."""
    records = list(records)
    base = pd.DataFrame(
        [{
            "nodeid": r.nodeid, "case": r.case, "stage": r.stage, "tier": r.tier, "model_id": r.model_id,
            "model": r.model, "strategy": r.strategy, "scripted": bool(r.scripted), "repetition": r.repetition,
            "status": r.status, "strict_success": bool(r.strict_success),
            "legacy_success": bool(r.legacy_success),
            "stopped_at_step": r.stopped_at_step, "steps_total": r.steps_total, "stopped_step": r.stopped_step,
            "duration_s": math.nan if r.duration_s is None else float(r.duration_s),
            "worker": r.worker, "host": r.host, "error": r.error,
            # re-scoring: the archived program (its path in the archive) and the study's own verdict
            "archive_file": (r.params or {}).get("archive_file"), "study_verdict": (r.params or {}).get("study_verdict"),
            # the last attempt's category, for runs the strict oracle did not accept
            "final_category": None if r.strict_success or not r.attempts else r.attempts[-1].category,
        } for r in records],
        columns=["nodeid", "case", "stage", "tier", "model_id", "model", "strategy", "scripted", "repetition", "status",
                 "strict_success", "legacy_success", "stopped_at_step", "steps_total", "stopped_step", "duration_s",
                 "worker", "host", "error", "final_category", "archive_file", "study_verdict"],
    )
    for col in ("stopped_at_step", "steps_total"):  # None: the run did not stop early / was never planned
        base[col] = base[col].astype("Int64")
    for col in ("scripted", "strict_success", "legacy_success"):
        base[col] = base[col].astype("bool")
    base["repetition"] = base["repetition"].astype("int64")
    base["tier"] = base["tier"].astype("Int64")  # <NA> for imported runs, which have no tier
    base["duration_s"] = base["duration_s"].astype("float64")
    # a run that stopped before its last step has no whole-pipeline legacy verdict (loop.repair)
    base["silent_failure"] = base["legacy_success"] & ~base["strict_success"] & base["stopped_at_step"].isna()

    att = _attempt_rows(records)
    # an attempt whose prompt (context) or answer (token limit) was cut
    att["_truncated"] = att["truncated"].fillna(False).astype("bool") | att["answer_truncated"]
    is_total = (att["step"] == RUN_TOTAL_STEP).to_numpy()
    totals = att[is_total]
    att = att[~is_total]
    agg = att.groupby("_run").agg(
        attempts=("number", "size"),
        steps_run=("_step_key", "nunique"),
        repeated_attempts=("repeated", "sum"),
        stuck_attempts=("stuck", "sum"),
        tokens=("tokens", lambda s: s.sum(min_count=1)),  # NaN only if every attempt is unknown
        cost_usd=("cost_usd", lambda s: s.sum(skipna=False)),  # NaN if any attempt is unknown
        latency_s=("latency_s", lambda s: s.sum(min_count=1)),
        truncated_attempts=("_truncated", "sum"),
        transient_retries=("transient_retries", "sum"),
    ).reindex(range(len(records)))

    no_attempts = agg["attempts"].isna().to_numpy()
    unfinished = base["status"].isin(UNFINISHED).to_numpy()
    runs = base.copy()
    runs["attempts"] = agg["attempts"].fillna(0).astype("int64").to_numpy()
    runs["repeated_attempts"] = agg["repeated_attempts"].fillna(0).astype("int64").to_numpy()
    runs["stuck_attempts"] = agg["stuck_attempts"].fillna(0).astype("int64").to_numpy()
    # attempts beyond the first of each step: a 9-step pipeline passed at once has 9 attempts, 0 repairs
    runs["steps_run"] = agg["steps_run"].fillna(0).astype("int64").to_numpy()
    runs["repairs"] = runs["attempts"] - runs["steps_run"]
    runs["truncated_attempts"] = agg["truncated_attempts"].fillna(0).astype("int64").to_numpy()
    runs["transient_retries"] = agg["transient_retries"].fillna(0).astype("int64").to_numpy()
    total = totals.groupby("_run").agg(
        tokens=("tokens", lambda s: s.sum(min_count=1)),
        cost_usd=("cost_usd", lambda s: s.sum(skipna=False)),
        latency_s=("latency_s", lambda s: s.sum(min_count=1)),
    ).reindex(range(len(records)))
    has_total = base.index.isin(totals["_run"].unique())
    for col in ("tokens", "cost_usd", "latency_s"):
        values = agg[col].astype("float64").to_numpy(copy=True)
        # No attempts: a finished run spent nothing; a crashed/interrupted one is unknown.
        values[no_attempts & ~unfinished] = 0.0
        # A run-level aggregate holds the run's published totals.
        values[has_total] = total[col].astype("float64").to_numpy()[has_total]
        runs[col] = values
    if (has_total & no_attempts).any():
        # only an aggregate: the number of generations was not published
        for col in ("attempts", "steps_run", "repairs"):
            counts = runs[col].astype("Int64")
            counts[has_total & no_attempts] = pd.NA
            runs[col] = counts
    return runs[RUN_COLUMNS]
