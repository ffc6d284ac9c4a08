"""Turn run records into tables: one row per run, one row per attempt, one row per (case, model).

Only imported at report time, so pandas is imported at module level; scipy is imported lazily
inside :func:`wilson_interval`.

Unknown stays unknown: an attempt whose cost is ``None`` makes the run's cost NaN, and a run whose
cost is NaN makes its group's mean and total cost NaN. A crashed or interrupted run with no
recorded attempts has unknown tokens, cost and latency (the worker may have called the LLM before
it died); a finished run with no attempts (e.g. a harness error before the first call) spent 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd

from .records import RunRecord, RunStatus

RUN_COLUMNS = [
    "nodeid", "case", "stage", "model_id", "model", "scripted", "repetition", "status",
    "strict_success", "legacy_success", "silent_failure", "attempts", "tokens", "cost_usd",
    "latency_s", "duration_s", "truncated_attempts", "transient_retries", "final_category",
    "worker", "error",
]

ATTEMPT_COLUMNS = [
    "nodeid", "case", "model_id", "repetition", "step", "item", "number", "prompt_hash",
    "category", "strict_passed", "legacy_passed", "returncode", "timed_out", "duration_s",
    "tokens", "cost_usd", "latency_s", "truncated", "transient_retries", "failed_checks",
]

SUMMARY_COLUMNS = [
    "case", "model_id", "runs",
    "strict_successes", "strict_rate", "strict_ci_low", "strict_ci_high",
    "legacy_successes", "legacy_rate", "legacy_ci_low", "legacy_ci_high",
    "silent_failures", "silent_failure_rate", "crashed", "errors",
    "mean_attempts", "median_attempts", "mean_latency_s", "median_latency_s",
    "mean_tokens", "total_tokens", "mean_cost_usd", "total_cost_usd", "scripted",
]

# Runs whose attempt list may be missing calls that really happened.
_UNFINISHED = (RunStatus.CRASHED, RunStatus.INCOMPLETE)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for ``successes`` out of ``n``; ``(nan, nan)`` when ``n == 0``."""
    if n == 0:
        return (math.nan, math.nan)
    from scipy.stats import binomtest

    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))


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
                "repetition": rec.repetition,
                "step": a.step,
                "item": a.item,
                "number": a.number,
                "prompt_hash": a.prompt_hash,
                "category": a.category,
                "strict_passed": a.strict_passed,
                "legacy_passed": bool(a.legacy and a.legacy.passed),
                "returncode": ex.returncode if ex is not None else None,
                "timed_out": bool(ex.timed_out) if ex is not None else False,
                "duration_s": ex.duration_s if ex is not None else math.nan,
                "tokens": a.total_tokens,
                "cost_usd": math.nan if a.cost_usd is None else float(a.cost_usd),
                "latency_s": math.nan if a.latency_s is None else float(a.latency_s),
                "truncated": a.truncated,
                "transient_retries": a.transient_retries,
                "failed_checks": ";".join(c.name for c in a.strict.failed_checks) if a.strict else "",
            })
    frame = pd.DataFrame(rows, columns=["_run", *ATTEMPT_COLUMNS])
    for col in ("_run", "repetition", "number", "transient_retries"):
        frame[col] = frame[col].astype("int64")
    for col in ("returncode", "tokens"):
        frame[col] = frame[col].astype("Int64")
    for col in ("duration_s", "cost_usd", "latency_s"):
        frame[col] = frame[col].astype("float64")
    for col in ("strict_passed", "legacy_passed", "timed_out"):
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
            "nodeid": r.nodeid, "case": r.case, "stage": r.stage, "model_id": r.model_id,
            "model": r.model, "scripted": bool(r.scripted), "repetition": r.repetition,
            "status": r.status, "strict_success": bool(r.strict_success),
            "legacy_success": bool(r.legacy_success),
            "duration_s": math.nan if r.duration_s is None else float(r.duration_s),
            "worker": r.worker, "error": r.error,
            # the last attempt's category, for runs the strict oracle did not accept
            "final_category": None if r.strict_success or not r.attempts else r.attempts[-1].category,
        } for r in records],
        columns=["nodeid", "case", "stage", "model_id", "model", "scripted", "repetition", "status",
                 "strict_success", "legacy_success", "duration_s", "worker", "error", "final_category"],
    )
    for col in ("scripted", "strict_success", "legacy_success"):
        base[col] = base[col].astype("bool")
    base["repetition"] = base["repetition"].astype("int64")
    base["duration_s"] = base["duration_s"].astype("float64")
    base["silent_failure"] = base["legacy_success"] & ~base["strict_success"]

    att = _attempt_rows(records)
    att["_truncated"] = att["truncated"].fillna(False).astype("bool")
    agg = att.groupby("_run").agg(
        attempts=("number", "size"),
        tokens=("tokens", lambda s: s.sum(min_count=1)),  # NaN only if every attempt is unknown
        cost_usd=("cost_usd", lambda s: s.sum(skipna=False)),  # NaN if any attempt is unknown
        latency_s=("latency_s", lambda s: s.sum(min_count=1)),
        truncated_attempts=("_truncated", "sum"),
        transient_retries=("transient_retries", "sum"),
    ).reindex(range(len(records)))

    no_attempts = agg["attempts"].isna().to_numpy()
    unfinished = base["status"].isin(_UNFINISHED).to_numpy()
    runs = base.copy()
    runs["attempts"] = agg["attempts"].fillna(0).astype("int64").to_numpy()
    runs["truncated_attempts"] = agg["truncated_attempts"].fillna(0).astype("int64").to_numpy()
    runs["transient_retries"] = agg["transient_retries"].fillna(0).astype("int64").to_numpy()
    for col in ("tokens", "cost_usd", "latency_s"):
        values = agg[col].astype("float64").to_numpy(copy=True)
        # No attempts: a finished run spent nothing; a crashed/interrupted one is unknown.
        values[no_attempts & ~unfinished] = 0.0
        runs[col] = values
    return runs[RUN_COLUMNS]


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (case, model_id), sorted by case then model_id."""
    if runs.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    frame = runs.assign(
        _crashed=runs["status"] == RunStatus.CRASHED,
        _error=runs["status"] == RunStatus.ERROR,
    )
    grouped = frame.groupby(["case", "model_id"], sort=True, dropna=False)
    out = grouped.agg(
        runs=("nodeid", "size"),
        strict_successes=("strict_success", "sum"),
        legacy_successes=("legacy_success", "sum"),
        silent_failures=("silent_failure", "sum"),
        crashed=("_crashed", "sum"),
        errors=("_error", "sum"),
        mean_attempts=("attempts", "mean"),
        median_attempts=("attempts", "median"),
        mean_latency_s=("latency_s", "mean"),
        median_latency_s=("latency_s", "median"),
        mean_tokens=("tokens", "mean"),
        total_tokens=("tokens", lambda s: s.sum(min_count=1)),
        mean_cost_usd=("cost_usd", lambda s: s.mean(skipna=False)),  # unknown stays unknown
        total_cost_usd=("cost_usd", lambda s: s.sum(skipna=False)),
        scripted=("scripted", "any"),
    ).reset_index()
    for col in ("runs", "strict_successes", "legacy_successes", "silent_failures", "crashed", "errors"):
        out[col] = out[col].astype("int64")
    out["scripted"] = out["scripted"].astype("bool")
    for kind in ("strict", "legacy"):
        successes = out[f"{kind}_successes"]
        out[f"{kind}_rate"] = successes / out["runs"]
        cis = [wilson_interval(k, n) for k, n in zip(successes, out["runs"])]
        out[f"{kind}_ci_low"] = [lo for lo, _ in cis]
        out[f"{kind}_ci_high"] = [hi for _, hi in cis]
    out["silent_failure_rate"] = out["silent_failures"] / out["runs"]
    out = out.sort_values(["case", "model_id"], kind="stable").reset_index(drop=True)
    return out[SUMMARY_COLUMNS]
