"""Research statistics per group of runs (by default one (case, model, repair strategy)): :func:`group_stats`.

Success rates with Wilson intervals, pass@k and pass^k, cumulative success by attempt,
distributions (mean/median/IQR/total) of tokens, cost and latency per run and per successful run,
failure taxonomy counts, the silent-failure rate, attempts per step and repairs, the repeated-answer
and stuck rates over retries (``results.retries``), the oracles' graded metrics over the passed runs
and the per-check failure counts (``results.metrics``). :func:`summary_frame`
is the one-row-per-group table (``summary.csv``) projected from the same :class:`GroupStats` that
``stats.json`` holds, so the two files never disagree.

Runs without a verdict (``crashed``, ``incomplete``, and ``error``: stopped by a cassette miss, a
bad cassette or a harness error) are counted in ``runs`` and in their own ``crashed``/``incomplete``/
``errors`` counts (``error_categories`` says which errors), but every rate (strict, legacy, silent
failures, pass@k, success by attempt) and the failure taxonomy of runs are over the ``finished``
runs (those with a verdict) only, so an interrupted sweep or stale cassettes do not read as failures. Distributions of tokens,
cost and latency still cover every run: what an unfinished run spent was spent (unknown stays unknown).

Unknown stays unknown: a run whose cost is NaN makes its group's mean and total cost NaN.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from pytest_autopilot.core.records import Attempt, Category, RunRecord, RunStatus
from pytest_autopilot.results.frames import NO_VERDICT, RUN_TOTAL_STEP, error_category, runs_frame
from pytest_autopilot.results.retries import retry_counts
from pytest_autopilot.results.metrics import check_failures, group_metrics, judged_attempts, metric_columns

# Taxonomy bucket of a failure whose category was not recorded (imported runs, runs without attempts).
UNKNOWN_CATEGORY = "unknown"
TAXONOMY = (*Category.ALL, UNKNOWN_CATEGORY)

# How runs are grouped unless told otherwise: the repair strategy is swept like the model.
DEFAULT_GROUPING = ("case", "model_id", "strategy")

SUMMARY_COLUMNS = [
    "case", "model_id", "strategy", "tier", "runs", "finished",
    "strict_successes", "strict_rate", "strict_ci_low", "strict_ci_high",
    "legacy_successes", "legacy_rate", "legacy_ci_low", "legacy_ci_high",
    "silent_failures", "silent_failure_rate", "stopped_early", "crashed", "incomplete", "errors",
    "mean_attempts", "median_attempts", "mean_attempts_per_step", "mean_repairs",
    "repeated_answers", "repeated_answer_rate", "stuck_retries", "stuck_rate",
    "mean_latency_s", "median_latency_s",
    "mean_tokens", "total_tokens", "mean_cost_usd", "total_cost_usd", "scripted", "human",
]

DISTRIBUTION_STATS = ("mean", "median", "q25", "q75", "iqr", "total")


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for ``successes`` out of ``n``; ``(nan, nan)`` when ``n == 0``."""
    if n == 0:
        return (math.nan, math.nan)
    # the closed form scipy's binomtest(...).proportion_ci(method="wilson") computes (tests/results/test_report.py
    # compares them), without importing scipy.stats (about 1.5 s) into every session that writes a summary
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p, z2n = successes / n, z * z / n
    centre = (p + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(p * (1 - p) / n + z2n / (4 * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


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
    """``{"n", "unknown", "mean", "median", "q25", "q75", "iqr", "total"}`` of the known values.

    ``unknown_is_unknown``: one NaN makes every statistic NaN (cost: never average a partial sum).
    Quartiles use linear interpolation (numpy's default). ``total`` is the sum of the known values.
    """
    series = pd.Series(list(values), dtype="float64")
    known = series.dropna()
    out: dict[str, float | int] = {"n": int(len(known)), "unknown": int(series.isna().sum())}
    if known.empty or (unknown_is_unknown and out["unknown"]):
        out.update(dict.fromkeys(DISTRIBUTION_STATS, math.nan))
        return out
    q25, q75 = float(known.quantile(0.25)), float(known.quantile(0.75))
    out.update(mean=float(known.mean()), median=float(known.median()), q25=q25, q75=q75, iqr=q75 - q25,
               total=float(known.sum()))
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
    """Statistics of one group of runs (by default one (case, model_id, strategy)).

    Rates are over ``finished`` runs (NaN when none finished); ``runs`` counts every run."""

    key: dict[str, Any]  # the grouping fields and their values
    case: str | None
    stage: str | None
    tier: int | None  # the difficulty tier its runs share (None: mixed, or imported runs)
    model_id: str | None
    strategy: str | None
    runs: int  # every run, finished or not
    finished: int  # runs that ended with a verdict: the denominator of every rate
    crashed: int  # the worker died during the run
    incomplete: int  # interrupted (Ctrl+C, SIGTERM) before the run ended
    errors: int  # stopped by a harness or set-up problem (status error): no verdict
    error_categories: dict[str, int]  # of those: cassette_miss, cassette_invalid, harness_error, ...
    successes: int  # strict
    rate: float
    ci_low: float  # Wilson 95%
    ci_high: float
    legacy_successes: int
    legacy_rate: float
    legacy_ci_low: float
    legacy_ci_high: float
    silent_failures: int
    # legacy success & strict failure, over finished runs; NaN when not measurable (a legacy success
    # without any strict verdict, e.g. imported paper runs judged only by the weak check)
    silent_failure_rate: float
    stopped_early: int  # finished runs that ended before their pipeline's last step (no legacy verdict)
    statuses: dict[str, int]
    pass_at_k: dict[int, float]  # k = 1..finished
    pass_hat_k: dict[int, float]  # k = 1..finished
    attempts_known: int  # runs whose attempt count is known
    mean_attempts: float  # LLM calls per run, every step together
    median_attempts: float
    mean_attempts_per_step: float  # per run: attempts / steps it ran, averaged over runs
    mean_repairs: float  # per run: attempts beyond the first of each step
    # success_by_attempt[i] = fraction of the finished runs that had succeeded after i+1 LLM
    # attempts; None when a successful run's attempt count is unknown
    success_by_attempt: list[float] | None
    tokens: dict[str, dict[str, float | int]]  # {"all": describe(...), "successful": describe(...)}
    cost_usd: dict[str, dict[str, float | int]]
    latency_s: dict[str, dict[str, float | int]]
    final_categories: dict[str, int]  # final category of the runs the strict oracle did not accept
    attempt_categories: dict[str, int]  # category of every failed LLM attempt
    failed_attempts: int
    retries: int  # attempts that are not the first of their step/item: the ones that could repeat one
    repeated_answers: int  # attempts whose code equals an earlier answer's in the same step
    # repeated_answers / retries; NaN without retries or when no answer was recorded (imports)
    repeated_answer_rate: float
    stuck_retries: int  # retries whose first error is the previous attempt's (loop.stuck)
    stuck_rate: float  # stuck_retries / retries; NaN without retries or when no first error was recorded
    scripted: bool = False  # any run answered by the scripted stand-in (not an LLM)
    human: bool = False  # any run answered by a person (the human baseline, not an LLM)
    baseline: bool = False  # imported baseline (paper) runs
    models: list[str] = field(default_factory=list)  # model ids pooled in this group
    # per oracle metric, over the runs that passed: {"n", "mean", "ci_low", "ci_high"} (95% t interval)
    metrics: dict[str, dict[str, float | int]] = field(default_factory=dict)
    # per check name: {"runs": finished runs failing it at least once, "attempts": judged attempts failing it}
    check_failures: dict[str, dict[str, int]] = field(default_factory=dict)
    attempts_judged: int = 0  # the denominator of check_failures[...]["attempts"]

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
    by: Sequence[str] | Callable[[RunRecord], Any] = DEFAULT_GROUPING,
    *,
    baseline: bool = False,
) -> list[GroupStats]:
    """Statistics per group, sorted by the group key (as text).

    ``by``: RunRecord field names, or a function of a record returning the group (a dict of
    named values, or one value). ``baseline`` marks every group as imported baseline runs.
    Success means strict success (for imported paper runs: the paper's own verdict), over the
    group's finished runs.
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


def _rate(count: int, n: int) -> float:
    return count / n if n else math.nan


def _one_group(key: dict[str, Any], recs: list[RunRecord], runs: pd.DataFrame, baseline: bool) -> GroupStats:
    done = ~runs["status"].isin(NO_VERDICT).to_numpy()
    n = int(done.sum())  # runs without a verdict are left out: every rate is over the finished ones
    strict = runs["strict_success"].to_numpy(dtype=bool) & done
    legacy = runs["legacy_success"].to_numpy(dtype=bool) & done
    c, lc = int(strict.sum()), int(legacy.sum())
    lo, hi = wilson_interval(c, n)
    llo, lhi = wilson_interval(lc, n)
    silent = int((runs["silent_failure"].to_numpy(dtype=bool) & done).sum())
    measurable = n > 0 and not any(r.legacy_success and not _strict_judged(r) for r in recs)

    attempts = pd.to_numeric(runs["attempts"], errors="coerce").astype("float64")
    ok_attempts = attempts[strict]
    if ok_attempts.isna().any():
        curve = None
    else:
        top = int(attempts[done].max()) if attempts[done].notna().any() else 0
        curve = [float((ok_attempts <= a).sum()) / n for a in range(1, top + 1)]

    final: dict[str, int] = dict.fromkeys(TAXONOMY, 0)
    for rec, cat, ended in zip(recs, runs["final_category"], done):
        if rec.strict_success or not ended:
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
    tries = retry_counts(recs)
    steps = pd.to_numeric(runs["steps_run"], errors="coerce").astype("float64")
    per_step = (attempts / steps.where(steps > 0))
    repairs = pd.to_numeric(runs["repairs"], errors="coerce").astype("float64")
    stopped = int((runs["stopped_at_step"].notna().to_numpy() & done).sum())

    def dist(col: str, unknown_is_unknown: bool = False) -> dict[str, dict[str, float | int]]:
        values = runs[col].astype("float64")
        return {"all": describe(values, unknown_is_unknown),
                "successful": describe(values[strict], unknown_is_unknown)}

    statuses: dict[str, int] = {}
    for rec in recs:
        statuses[rec.status] = statuses.get(rec.status, 0) + 1
    first = recs[0]
    common = lambda field: (getattr(first, field)  # noqa: E731
                            if all(getattr(r, field) == getattr(first, field) for r in recs) else None)
    return GroupStats(
        key=key, case=common("case"), stage=common("stage"), tier=common("tier"), model_id=common("model_id"),
        strategy=common("strategy"),
        runs=len(recs), finished=n, crashed=statuses.get(RunStatus.CRASHED, 0),
        incomplete=statuses.get(RunStatus.INCOMPLETE, 0), errors=statuses.get(RunStatus.ERROR, 0),
        error_categories=_error_categories(recs),
        successes=c, rate=_rate(c, n), ci_low=lo, ci_high=hi,
        legacy_successes=lc, legacy_rate=_rate(lc, n), legacy_ci_low=llo, legacy_ci_high=lhi,
        silent_failures=silent, silent_failure_rate=silent / n if measurable else math.nan, stopped_early=stopped,
        statuses=dict(sorted(statuses.items())),
        pass_at_k={k: pass_at_k(n, c, k) for k in range(1, n + 1)},
        pass_hat_k={k: pass_hat_k(n, c, k) for k in range(1, n + 1)},
        attempts_known=int(attempts.notna().sum()),
        mean_attempts=float(attempts.mean()) if attempts.notna().any() else math.nan,
        median_attempts=float(attempts.median()) if attempts.notna().any() else math.nan,
        mean_attempts_per_step=float(per_step.mean()) if per_step.notna().any() else math.nan,
        mean_repairs=float(repairs.mean()) if repairs.notna().any() else math.nan,
        success_by_attempt=curve,
        tokens=dist("tokens"),
        cost_usd=dist("cost_usd", unknown_is_unknown=True),  # unknown stays unknown
        latency_s=dist("latency_s"),
        final_categories=final,
        attempt_categories=per_attempt,
        failed_attempts=failed_attempts,
        retries=tries.retries, repeated_answers=tries.repeated, repeated_answer_rate=tries.repeated_rate,
        stuck_retries=tries.stuck, stuck_rate=tries.stuck_rate,
        scripted=any(r.scripted for r in recs),
        human=any(r.human for r in recs),
        baseline=baseline,
        models=sorted({r.model_id for r in recs}),
        metrics=group_metrics(recs), check_failures=check_failures(recs), attempts_judged=judged_attempts(recs),
    )


def _error_categories(recs: list[RunRecord]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for rec in recs:
        category = error_category(rec)
        if category is not None:
            counts[category] = counts.get(category, 0) + 1
    return dict(sorted(counts.items()))


GROUP_COLUMNS_HEAD = [
    "group", "case", "stage", "tier", "model_id", "strategy", "runs", "finished", "crashed", "incomplete", "errors",
    "successes", "rate", "ci_low", "ci_high", "legacy_rate", "silent_failures", "silent_failure_rate",
    "stopped_early", "attempts_known", "mean_attempts", "median_attempts", "mean_attempts_per_step", "mean_repairs",
    "retries", "repeated_answers", "repeated_answer_rate", "stuck_retries", "stuck_rate", "scripted", "human", "baseline",
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
                for stat in DISTRIBUTION_STATS:
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


def summary_frame(groups: Iterable[GroupStats]) -> pd.DataFrame:
    """``summary.csv``: one row per group of :func:`group_stats` (by case, model_id and strategy),
    in the groups' order, every number taken from the group's statistics."""
    rows = []
    for g in groups:
        rows.append({
            "case": g.case, "tier": g.tier, "model_id": g.model_id, "strategy": g.strategy, "runs": g.runs, "finished": g.finished,
            "strict_successes": g.successes, "strict_rate": g.rate, "strict_ci_low": g.ci_low,
            "strict_ci_high": g.ci_high, "legacy_successes": g.legacy_successes, "legacy_rate": g.legacy_rate,
            "legacy_ci_low": g.legacy_ci_low, "legacy_ci_high": g.legacy_ci_high,
            "silent_failures": g.silent_failures, "silent_failure_rate": g.silent_failure_rate,
            "stopped_early": g.stopped_early, "crashed": g.crashed, "incomplete": g.incomplete, "errors": g.errors,
            "mean_attempts": g.mean_attempts, "median_attempts": g.median_attempts,
            "mean_attempts_per_step": g.mean_attempts_per_step, "mean_repairs": g.mean_repairs,
            "repeated_answers": g.repeated_answers, "repeated_answer_rate": g.repeated_answer_rate,
            "stuck_retries": g.stuck_retries, "stuck_rate": g.stuck_rate,
            "mean_latency_s": g.latency_s["all"]["mean"], "median_latency_s": g.latency_s["all"]["median"],
            "mean_tokens": g.tokens["all"]["mean"], "total_tokens": g.tokens["all"]["total"],
            "mean_cost_usd": g.cost_usd["all"]["mean"], "total_cost_usd": g.cost_usd["all"]["total"],
            "scripted": g.scripted, "human": g.human,
            **metric_columns(g.metrics),
        })
    extra = list(dict.fromkeys(c for row in rows for c in row if c not in SUMMARY_COLUMNS))  # metric_* columns
    frame = pd.DataFrame(rows, columns=SUMMARY_COLUMNS + extra)
    if frame.empty:
        return frame
    counts = ["runs", "finished", "strict_successes", "legacy_successes", "silent_failures", "stopped_early",
              "crashed", "incomplete", "errors", "repeated_answers", "stuck_retries"]
    frame[counts] = frame[counts].astype("int64")
    frame[["scripted", "human"]] = frame[["scripted", "human"]].astype("bool")
    frame["tier"] = frame["tier"].astype("Int64")
    numbers = [c for c in SUMMARY_COLUMNS if c not in ("case", "tier", "model_id", "strategy", "scripted", "human", *counts)]
    frame[numbers + extra] = frame[numbers + extra].astype("float64")  # unknown attempt counts (imports): NaN, not <NA>
    return frame


def summarise(records: Iterable[RunRecord], *, baseline: bool = False) -> pd.DataFrame:
    """One row per (case, model_id, strategy), sorted by them: :func:`summary_frame` of
    :func:`group_stats`."""
    if isinstance(records, pd.DataFrame):
        raise TypeError("summarise takes the run records (e.g. summarise(records)), not a runs frame: "
                        "the summary comes from the per-group statistics, which need the attempts")
    return summary_frame(group_stats(records, baseline=baseline))
