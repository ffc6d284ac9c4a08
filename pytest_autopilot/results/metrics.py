"""Graded quality beside the verdict, and which checks fail.

An oracle may give named numbers with its verdict (``Verdict.metrics``: held-out accuracy,
agreement with the reference, flash and RAM bytes, model bytes, seconds per frame, ...). They
never reach the model: the repair feedback is built from the failed checks only. A run's
metrics are those of its accepted attempts (the answers it was judged on; a later accepted
attempt's value of the same name wins), and the reports summarise each metric per group over
the runs that **passed**, as a mean with a 95% Student-t interval, so two models that both pass
still rank. ``compare`` gives the difference B - A: paired on repetitions when the comparison is
paired, else Welch's.

The per-check failure table says, per group and check name, in how many finished runs the
check failed at least once and in how many judged attempts it failed: which requirement the
models miss.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from pytest_autopilot.core.records import RunRecord, RunStatus
from pytest_autopilot.core.util import fmt_num

CONFIDENCE = 0.95
METRIC_STATS = ("n", "mean", "ci_low", "ci_high")


def run_metrics(record: RunRecord) -> dict[str, float]:
    """The metrics of a run's accepted attempts (empty when its oracles gave none)."""
    out: dict[str, float] = {}
    for attempt in record.attempts:
        if attempt.strict is not None and attempt.strict.passed:
            out.update({name: float(value) for name, value in attempt.strict.metrics.items()})
    return out


def _t_quantile(dof: float) -> float:
    from scipy.stats import t

    return float(t.ppf(0.5 + CONFIDENCE / 2, dof))


def mean_interval(values: Sequence[float]) -> dict[str, float | int]:
    """n, mean and the 95% t interval of the mean (NaN bounds with fewer than 2 values)."""
    n = len(values)
    if n == 0:
        return {"n": 0, "mean": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    mean = sum(values) / n
    if n < 2:
        return {"n": 1, "mean": mean, "ci_low": math.nan, "ci_high": math.nan}
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = _t_quantile(n - 1) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "ci_low": mean - half, "ci_high": mean + half}


def group_metrics(records: Iterable[RunRecord]) -> dict[str, dict[str, float | int]]:
    """Per metric name: :func:`mean_interval` over the runs that passed the strict oracle."""
    values: dict[str, list[float]] = {}
    for record in records:
        if record.status == RunStatus.SUCCESS and record.strict_success:
            for name, value in run_metrics(record).items():
                if math.isfinite(value):
                    values.setdefault(name, []).append(value)
    return {name: mean_interval(values[name]) for name in sorted(values)}


def check_failures(records: Iterable[RunRecord]) -> dict[str, dict[str, int]]:
    """Per check name: ``runs`` (finished runs in which it failed at least once) and ``attempts``
    (judged attempts in which it failed)."""
    out: dict[str, dict[str, int]] = {}
    for record in records:
        if record.status not in (RunStatus.SUCCESS, RunStatus.FAILURE):
            continue
        failed_in_run: set[str] = set()
        for attempt in record.attempts:
            for check in attempt.strict.failed_checks if attempt.strict is not None else []:
                out.setdefault(check.name, {"runs": 0, "attempts": 0})["attempts"] += 1
                failed_in_run.add(check.name)
        for name in failed_in_run:
            out[name]["runs"] += 1
    return dict(sorted(out.items()))


def judged_attempts(records: Iterable[RunRecord]) -> int:
    """Attempts of finished runs that a strict oracle judged: the denominator of ``attempts`` above."""
    return sum(a.strict is not None for r in records if r.status in (RunStatus.SUCCESS, RunStatus.FAILURE)
               for a in r.attempts)


def metric_columns(metrics: dict[str, dict[str, float | int]]) -> dict[str, float | int]:
    """``metric_<name>_<n|mean|ci_low|ci_high>`` columns of a summary row."""
    return {f"metric_{name}_{stat}": summary[stat] for name, summary in metrics.items() for stat in METRIC_STATS}


# --------------------------------------------------------------------------- compare


def metric_differences(a: list[RunRecord], b: list[RunRecord], paired: bool) -> dict[str, dict[str, Any]]:
    """Per metric present on both sides' passed runs: mean A, mean B and B - A with its 95%
    interval, paired on repetitions (both runs of a pair passed) or, unpaired, Welch's."""
    passed = lambda runs: [r for r in runs if r.status == RunStatus.SUCCESS and r.strict_success]  # noqa: E731
    ra, rb = passed(a), passed(b)
    ma, mb = {r.repetition: run_metrics(r) for r in ra}, {r.repetition: run_metrics(r) for r in rb}
    names = sorted({n for m in ma.values() for n in m} & {n for m in mb.values() for n in m})
    out = {}
    for name in names:
        if paired:
            reps = [rep for rep in sorted(ma.keys() & mb.keys()) if name in ma[rep] and name in mb[rep]]
            xa, xb = [ma[rep][name] for rep in reps], [mb[rep][name] for rep in reps]
            diff = mean_interval([y - x for x, y in zip(xa, xb)])
        else:
            xa = [m[name] for m in ma.values() if name in m]
            xb = [m[name] for m in mb.values() if name in m]
            diff = welch_difference(xa, xb)
        out[name] = {"paired": paired, "n_a": len(xa), "n_b": len(xb), "mean_a": mean_interval(xa)["mean"],
                     "mean_b": mean_interval(xb)["mean"], "diff": diff["mean"], "ci_low": diff["ci_low"],
                     "ci_high": diff["ci_high"]}
    return out


def welch_difference(xa: Sequence[float], xb: Sequence[float]) -> dict[str, float]:
    """mean(B) - mean(A) with Welch's 95% interval (NaN bounds when a side has fewer than 2 values)."""
    sa, sb = mean_interval(xa), mean_interval(xb)
    diff = sb["mean"] - sa["mean"]
    if len(xa) < 2 or len(xb) < 2:
        return {"mean": diff, "ci_low": math.nan, "ci_high": math.nan}
    var = lambda xs, m: sum((x - m) ** 2 for x in xs) / (len(xs) - 1)  # noqa: E731
    va, vb = var(xa, sa["mean"]) / len(xa), var(xb, sb["mean"]) / len(xb)
    if va + vb == 0:
        return {"mean": diff, "ci_low": diff, "ci_high": diff}
    dof = (va + vb) ** 2 / (va ** 2 / (len(xa) - 1) + vb ** 2 / (len(xb) - 1))
    half = _t_quantile(dof) * math.sqrt(va + vb)
    return {"mean": diff, "ci_low": diff - half, "ci_high": diff + half}


def difference_lines(label: str, differences: dict[str, dict[str, Any]]) -> list[str]:
    """The compare text's lines for one group's metric differences."""
    lines = []
    for name, d in differences.items():
        num = {k: fmt_num(d[k], ".4g", "n/a") for k in ("mean_a", "mean_b", "diff", "ci_low", "ci_high")}
        how = "paired on repetitions" if d["paired"] else "unpaired, Welch"
        lines.append(f"  {label}: metric {name} over passed runs: A {num['mean_a']} (n={d['n_a']}), "
                     f"B {num['mean_b']} (n={d['n_b']}), B - A {num['diff']} "
                     f"[95% CI {num['ci_low']}, {num['ci_high']}] ({how})")
    return lines


# --------------------------------------------------------------------------- the failure table

CHECK_FAILURE_COLUMNS = ["case", "model_id", "strategy", "check", "runs_failed", "finished_runs",
                         "attempts_failed", "attempts_judged"]


def check_failures_frame(groups: Iterable[Any]):
    """``check_failures.csv``: one row per (group, check that failed in it) of ``GroupStats``."""
    import pandas as pd

    rows = [{"case": g.case, "model_id": g.model_id, "strategy": g.strategy, "check": check,
             "runs_failed": counts["runs"], "finished_runs": g.finished, "attempts_failed": counts["attempts"],
             "attempts_judged": g.attempts_judged}
            for g in groups for check, counts in g.check_failures.items()]
    return pd.DataFrame(rows, columns=CHECK_FAILURE_COLUMNS)


def group_lines(group: Any) -> list[str]:
    """A ``GroupStats``'s metrics and failed checks, for ``pytest-autopilot stats``."""
    metrics = "; ".join(f"{name} {fmt_num(s['mean'], '.4g', 'n/a')} [{fmt_num(s['ci_low'], '.4g', 'n/a')}, "
                        f"{fmt_num(s['ci_high'], '.4g', 'n/a')}] n={s['n']}" for name, s in group.metrics.items())
    checks = ", ".join(f"{name} {counts['runs']}/{group.finished}" for name, counts in group.check_failures.items())
    return [f"  metrics over passed runs (mean [95% CI]): {metrics or '-'}",
            f"  checks failed (runs failing it / finished runs): {checks or '-'}"]
