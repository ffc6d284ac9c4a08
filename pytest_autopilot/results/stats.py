"""Turn run records into tables: one row per run, one row per attempt, one row per (case, model).

Only imported at report time, so pandas is imported at module level; scipy is imported lazily
inside :func:`wilson_interval`.

Unknown stays unknown: an attempt whose cost is ``None`` makes the run's cost NaN, and a run whose
cost is NaN makes its group's mean and total cost NaN. A crashed or interrupted run with no
recorded attempts has unknown tokens, cost and latency (the worker may have called the LLM before
it died); a finished run with no attempts (e.g. a harness error before the first call) spent 0.

Imported runs (the paper baseline, :mod:`pytest_autopilot.results.baseline`) may carry a *run-level
aggregate*: an :class:`~pytest_autopilot.core.records.Attempt` whose ``step`` is :data:`RUN_TOTAL_STEP`.
It is not an LLM call: it holds the run's published totals (tokens, cost, latency). When a run has
one, the run's tokens/cost/latency are the aggregate's (not sums over its attempts), and its
attempt count is the number of its other attempts -- unknown (``<NA>``) when it has none, i.e. the
source did not publish how many generations the run took.

Below :func:`summarise`, :func:`group_stats` adds the research statistics per (case, model):
pass@k and pass^k, cumulative success by attempt, distributions (mean/median/IQR) of tokens, cost
and latency per run and per successful run, failure taxonomy counts and the silent-failure rate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from pytest_autopilot.core.records import Attempt, Category, RunRecord, RunStatus

# ``Attempt.step`` of a run-level aggregate (see the module docstring); not an LLM call.
RUN_TOTAL_STEP = "run_total"
# Taxonomy bucket of a failure whose category was not recorded (imported runs, runs without attempts).
UNKNOWN_CATEGORY = "unknown"
TAXONOMY = (*Category.ALL, UNKNOWN_CATEGORY)

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
    is_total = (att["step"] == RUN_TOTAL_STEP).to_numpy()
    totals = att[is_total]
    att = att[~is_total]
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
        counts = runs["attempts"].astype("Int64")
        counts[has_total & no_attempts] = pd.NA
        runs["attempts"] = counts
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
    for col in ("mean_attempts", "median_attempts"):  # unknown attempt counts (imports): NaN, not <NA>
        out[col] = out[col].astype("float64")
    out = out.sort_values(["case", "model_id"], kind="stable").reset_index(drop=True)
    return out[SUMMARY_COLUMNS]


# ---------------------------------------------------------------------------------------------
# research statistics per group (item 1 of "Evaluation reports and research features")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021): P(at least one of k runs drawn from n succeeds).

    ``1 - C(n-c, k) / C(n, k)``, computed exactly with integers.
    """
    _check_nck(n, c, k)
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_hat_k(n: int, c: int, k: int) -> float:
    """Unbiased pass^k: P(all k runs drawn without replacement from n succeed) = ``C(c, k) / C(n, k)``."""
    _check_nck(n, c, k)
    return math.comb(c, k) / math.comb(n, k)


def _check_nck(n: int, c: int, k: int) -> None:
    if not (0 <= c <= n and 1 <= k <= n):
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")


def describe(values: Iterable[float], unknown_is_unknown: bool = False) -> dict[str, float | int]:
    """``{"n", "unknown", "mean", "median", "q25", "q75", "iqr"}`` of the known values.

    ``unknown_is_unknown``: one NaN makes every statistic NaN (cost: never average a partial sum).
    Quartiles use linear interpolation (numpy's default).
    """
    series = pd.Series(list(values), dtype="float64")
    known = series.dropna()
    out: dict[str, float | int] = {"n": int(len(known)), "unknown": int(series.isna().sum())}
    if known.empty or (unknown_is_unknown and out["unknown"]):
        out.update(mean=math.nan, median=math.nan, q25=math.nan, q75=math.nan, iqr=math.nan)
        return out
    q25, q75 = float(known.quantile(0.25)), float(known.quantile(0.75))
    out.update(mean=float(known.mean()), median=float(known.median()), q25=q25, q75=q75, iqr=q75 - q25)
    return out


def attempt_failed(attempt: Attempt) -> bool:
    """Whether an attempt failed: it has a category, else its strict verdict (else legacy) rejected it.

    The fallbacks cover imported attempts whose failure is known but whose category is not.
    """
    if attempt.category is not None:
        return True
    if attempt.strict is not None:
        return not attempt.strict.passed
    if attempt.legacy is not None:
        return not attempt.legacy.passed
    return False


def _strict_judged(rec: RunRecord) -> bool:
    return any(a.strict is not None for a in rec.attempts)


@dataclass
class GroupStats:
    """Statistics of one group of runs (by default one (case, model_id))."""

    key: dict[str, Any]  # the grouping fields and their values
    case: str | None
    stage: str | None
    model_id: str | None
    runs: int
    successes: int  # strict
    rate: float
    ci_low: float  # Wilson 95%
    ci_high: float
    legacy_successes: int
    legacy_rate: float
    legacy_ci_low: float
    legacy_ci_high: float
    silent_failures: int
    # legacy success & strict failure, over runs; NaN when not measurable (a legacy success without
    # any strict verdict, e.g. imported paper runs judged only by the weak check)
    silent_failure_rate: float
    statuses: dict[str, int]
    pass_at_k: dict[int, float]  # k = 1..runs
    pass_hat_k: dict[int, float]  # k = 1..runs
    attempts_known: int  # runs whose attempt count is known
    mean_attempts: float
    median_attempts: float
    # success_by_attempt[i] = fraction of all runs that had succeeded after i+1 LLM attempts;
    # None when a successful run's attempt count is unknown
    success_by_attempt: list[float] | None
    tokens: dict[str, dict[str, float | int]]  # {"all": describe(...), "successful": describe(...)}
    cost_usd: dict[str, dict[str, float | int]]
    latency_s: dict[str, dict[str, float | int]]
    final_categories: dict[str, int]  # final category of the runs the strict oracle did not accept
    attempt_categories: dict[str, int]  # category of every failed LLM attempt
    failed_attempts: int
    scripted: bool = False  # any run answered by the scripted stand-in (not an LLM)
    baseline: bool = False  # imported baseline (paper) runs
    models: list[str] = field(default_factory=list)  # model ids pooled in this group

    @property
    def label(self) -> str:
        return " × ".join(str(v) for v in self.key.values())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["label"] = self.label
        return data


def _group_key(by: Sequence[str] | Callable[[RunRecord], Any], rec: RunRecord) -> dict[str, Any]:
    if callable(by):
        value = by(rec)
        return dict(value) if isinstance(value, dict) else {"group": value}
    return {name: getattr(rec, name) for name in by}


def group_stats(
    records: Iterable[RunRecord],
    by: Sequence[str] | Callable[[RunRecord], Any] = ("case", "model_id"),
    *,
    baseline: bool = False,
) -> list[GroupStats]:
    """Statistics per group, sorted by the group key (as text).

    ``by``: RunRecord field names, or a function of a record returning the group (a dict of
    named values, or one value). ``baseline`` marks every group as imported baseline runs.
    Success means strict success (for imported paper runs: the paper's own verdict).
    """
    records = list(records)
    if not records:
        return []
    runs = runs_frame(records)
    groups: dict[tuple, list[int]] = {}
    keys: dict[tuple, dict[str, Any]] = {}
    for i, rec in enumerate(records):
        key = _group_key(by, rec)
        ident = tuple((k, str(v)) for k, v in key.items())
        groups.setdefault(ident, []).append(i)
        keys[ident] = key
    out = [_one_group(keys[ident], [records[i] for i in idx], runs.iloc[idx], baseline)
           for ident, idx in groups.items()]
    return sorted(out, key=lambda g: tuple(str(v) for v in g.key.values()))


def _one_group(key: dict[str, Any], recs: list[RunRecord], runs: pd.DataFrame, baseline: bool) -> GroupStats:
    n = len(recs)
    strict = runs["strict_success"].to_numpy(dtype=bool)
    legacy = runs["legacy_success"].to_numpy(dtype=bool)
    c, lc = int(strict.sum()), int(legacy.sum())
    lo, hi = wilson_interval(c, n)
    llo, lhi = wilson_interval(lc, n)
    silent = int(runs["silent_failure"].sum())
    measurable = not any(r.legacy_success and not _strict_judged(r) for r in recs)

    attempts = pd.to_numeric(runs["attempts"], errors="coerce").astype("float64")
    ok_attempts = attempts[strict]
    if ok_attempts.isna().any():
        curve = None
    else:
        top = int(attempts.max()) if attempts.notna().any() else 0
        curve = [float((ok_attempts <= a).sum()) / n for a in range(1, top + 1)]

    final: dict[str, int] = dict.fromkeys(TAXONOMY, 0)
    for rec, cat in zip(recs, runs["final_category"]):
        if rec.strict_success:
            continue
        cat = cat if isinstance(cat, str) and cat else UNKNOWN_CATEGORY
        final[cat] = final.get(cat, 0) + 1
    per_attempt: dict[str, int] = dict.fromkeys(TAXONOMY, 0)
    failed_attempts = 0
    for rec in recs:
        for a in rec.attempts:
            if a.step == RUN_TOTAL_STEP or not attempt_failed(a):
                continue
            failed_attempts += 1
            cat = a.category or UNKNOWN_CATEGORY
            per_attempt[cat] = per_attempt.get(cat, 0) + 1

    def dist(col: str, unknown_is_unknown: bool = False) -> dict[str, dict[str, float | int]]:
        values = runs[col].astype("float64")
        return {"all": describe(values, unknown_is_unknown),
                "successful": describe(values[strict], unknown_is_unknown)}

    statuses: dict[str, int] = {}
    for rec in recs:
        statuses[rec.status] = statuses.get(rec.status, 0) + 1
    first = recs[0]
    return GroupStats(
        key=key,
        case=first.case if all(r.case == first.case for r in recs) else None,
        stage=first.stage if all(r.stage == first.stage for r in recs) else None,
        model_id=first.model_id if all(r.model_id == first.model_id for r in recs) else None,
        runs=n, successes=c, rate=c / n, ci_low=lo, ci_high=hi,
        legacy_successes=lc, legacy_rate=lc / n, legacy_ci_low=llo, legacy_ci_high=lhi,
        silent_failures=silent, silent_failure_rate=silent / n if measurable else math.nan,
        statuses=dict(sorted(statuses.items())),
        pass_at_k={k: pass_at_k(n, c, k) for k in range(1, n + 1)},
        pass_hat_k={k: pass_hat_k(n, c, k) for k in range(1, n + 1)},
        attempts_known=int(attempts.notna().sum()),
        mean_attempts=float(attempts.mean()) if attempts.notna().any() else math.nan,
        median_attempts=float(attempts.median()) if attempts.notna().any() else math.nan,
        success_by_attempt=curve,
        tokens=dist("tokens"),
        cost_usd=dist("cost_usd", unknown_is_unknown=True),  # unknown stays unknown
        latency_s=dist("latency_s"),
        final_categories=final,
        attempt_categories=per_attempt,
        failed_attempts=failed_attempts,
        scripted=any(r.scripted for r in recs),
        baseline=baseline,
        models=sorted({r.model_id for r in recs}),
    )


GROUP_COLUMNS_HEAD = [
    "group", "case", "stage", "model_id", "runs", "successes", "rate", "ci_low", "ci_high",
    "legacy_rate", "silent_failures", "silent_failure_rate", "attempts_known", "mean_attempts",
    "median_attempts", "scripted", "baseline",
]


def group_stats_frame(groups: Iterable[GroupStats]) -> pd.DataFrame:
    """A flat table of :func:`group_stats`: scalars, then distributions (``tokens_all_mean``, ...),
    taxonomy counts (``final_<category>``, ``attempt_<category>``), pass@k/pass^k (``pass@<k>``,
    ``pass^<k>``) and the attempts curve (``success_by_attempt_<a>``)."""
    rows = []
    for g in groups:
        row: dict[str, Any] = {"group": g.label}
        for col in GROUP_COLUMNS_HEAD[1:]:
            row[col] = getattr(g, col)
        for name in ("tokens", "cost_usd", "latency_s"):
            for subset, d in getattr(g, name).items():
                for stat in ("mean", "median", "q25", "q75", "iqr"):
                    row[f"{name}_{subset}_{stat}"] = d[stat]
        for cat, count in g.final_categories.items():
            row[f"final_{cat}"] = count
        for cat, count in g.attempt_categories.items():
            row[f"attempt_{cat}"] = count
        for k, v in g.pass_at_k.items():
            row[f"pass@{k}"] = v
        for k, v in g.pass_hat_k.items():
            row[f"pass^{k}"] = v
        for a, v in enumerate(g.success_by_attempt or [], start=1):
            row[f"success_by_attempt_{a}"] = v
        rows.append(row)
    return pd.DataFrame(rows)
