"""Compare two sets of runs (two models, two repair strategies, two prompt versions, two runs, or a
run and a baseline).

Runs are grouped on both sides by ``by`` (default: case and model id, plus the repair strategy when
either side holds several strategies, so strategy is compared with strategy). For each group
present on both sides:

* **paired** — when each side has exactly one run per repetition and both sides have the same
  repetitions: the runs are paired on (group, repetition) and tested with an **exact McNemar
  test** (two-sided binomial test of the discordant pairs, ``scipy.stats.binomtest``); a pair
  with a run that did not finish is left out;
* **unpaired** — otherwise (different repetition counts or numbering, several runs per
  repetition, or either side a baseline, whose repetitions do not correspond to ours): **Fisher's
  exact test** (two-sided) on the 2×2 table of successes and failures. The text says which test
  was used and why.

Runs without a verdict (crashed, incomplete, or stopped by an error such as a cassette miss) count
on neither side, never as failures; a comparison holding any of them, or an incomplete report, is
**not comparable** (:attr:`Comparison.not_comparable` says why), and a gate on it fails as such.

Beside the per-group tests, one **pooled test** over every group and the **power** of the design
(the smallest change it could detect; a warning where no change could be significant): see
:mod:`pytest_autopilot.results.pooled`. :meth:`Comparison.drops_over` is the effect-size gate
(``--max-drop``).

A group is a **regression** when B's success rate is lower than A's with ``p < alpha``; an
**improvement** when higher with ``p < alpha``. p-values are per group and not corrected for
multiple comparisons (the text says how many were made).

``metric`` is ``"strict"`` (strict oracle) or ``"legacy"`` (the paper's weak check). Imported
paper runs carry only the paper's weak verdict (see :mod:`pytest_autopilot.results.baseline`), so
``legacy`` is the like-for-like metric against the paper.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pytest_autopilot.core.records import RunRecord, RunStatus
from pytest_autopilot.core.util import fmt_num
from pytest_autopilot.results.frames import error_category, finished
from pytest_autopilot.results.pooled import drop, fisher_exact, mcnemar_exact, pooled_test, power_lines

METRICS = ("strict", "legacy")
MCNEMAR = "exact McNemar (binomial test of discordant pairs, two-sided)"
FISHER = "Fisher's exact test (two-sided)"


@dataclass
class GroupComparison:
    key: dict[str, Any]
    n_a: int
    successes_a: int
    n_b: int
    successes_b: int
    test: str  # MCNEMAR or FISHER
    paired: bool
    p_value: float
    significant: bool
    regression: bool
    improvement: bool
    why_unpaired: str = ""
    pairs: int = 0  # paired only
    a_only: int = 0  # pairs where A succeeded and B failed
    b_only: int = 0  # pairs where B succeeded and A failed

    @property
    def rate_a(self) -> float:
        return self.successes_a / self.n_a if self.n_a else math.nan

    @property
    def rate_b(self) -> float:
        return self.successes_b / self.n_b if self.n_b else math.nan

    @property
    def label(self) -> str:
        return " × ".join(str(v) for v in self.key.values()) or "all"

    @property
    def verdict(self) -> str:
        return "REGRESSION" if self.regression else "improvement" if self.improvement else "no significant difference"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(label=self.label, rate_a=self.rate_a, rate_b=self.rate_b, verdict=self.verdict)
        return data


@dataclass
class Comparison:
    a_label: str
    b_label: str
    alpha: float
    metric: str
    by: tuple[str, ...]
    groups: list[GroupComparison]
    only_in_a: list[str] = field(default_factory=list)
    only_in_b: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    not_comparable: list[str] = field(default_factory=list)  # runs without a verdict, incomplete reports
    pooled: Any = None  # pooled.PooledTest over every group
    power: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[GroupComparison]:
        return [g for g in self.groups if g.regression]

    @property
    def pooled_regression(self) -> bool:
        return bool(self.pooled is not None and self.pooled.regression)

    def drops_over(self, max_drop: float) -> list[GroupComparison]:
        """The groups whose rate fell by more than ``max_drop`` (0.1: ten points) from A to B."""
        return [g for g in self.groups if drop(g) > max_drop + 1e-9]

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a_label, "b": self.b_label, "alpha": self.alpha, "metric": self.metric,
            "by": list(self.by), "groups": [g.to_dict() for g in self.groups],
            "regressions": [g.label for g in self.regressions],
            "pooled": self.pooled.to_dict() if self.pooled else None, "power": self.power,
            "not_comparable": self.not_comparable,
            "only_in_a": self.only_in_a, "only_in_b": self.only_in_b, "notes": self.notes,
        }

    def text(self) -> str:
        lines = [f"compare A = {self.a_label}  vs  B = {self.b_label}"]
        if self.not_comparable:
            lines.append("NOT COMPARABLE: " + "; ".join(self.not_comparable)
                         + " (runs without a verdict count on neither side)")
        lines.append(f"success = {self.metric} oracle; grouped by {', '.join(self.by) or 'nothing (all runs)'}; "
                     f"alpha = {self.alpha:g}")
        header = ["group", "A ok/n", "A rate", "B ok/n", "B rate", "test", "p", "verdict"]
        rows = []
        for g in self.groups:
            test = (f"McNemar {g.a_only}:{g.b_only} of {g.pairs} pairs" if g.paired else "Fisher (unpaired)")
            rows.append([g.label, f"{g.successes_a}/{g.n_a}", fmt_num(g.rate_a, ".3f", missing="n/a"),
                         f"{g.successes_b}/{g.n_b}", fmt_num(g.rate_b, ".3f", missing="n/a"), test, f"{g.p_value:.4g}",
                         g.verdict])
        if rows:
            widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
            fmt = lambda r: "  ".join(c.ljust(w) if i in (0, 5, 7) else c.rjust(w)  # noqa: E731
                                      for i, (c, w) in enumerate(zip(r, widths))).rstrip()
            lines += [fmt(header), fmt(["-" * w for w in widths]), *map(fmt, rows)]
        else:
            lines.append("no group present in both A and B: nothing compared")
        if any(g.paired for g in self.groups):
            lines.append(f"paired groups: {MCNEMAR}, pairs = same (group, repetition)")
        unpaired = [g for g in self.groups if not g.paired]
        if unpaired:
            reasons = sorted({g.why_unpaired for g in unpaired})
            lines.append(f"unpaired groups: {FISHER}; why unpaired: {'; '.join(reasons)}")
        if len(self.groups) > 1:
            lines.append(f"{len(self.groups)} comparisons, p-values not corrected for multiple comparisons")
        if self.only_in_a:
            lines.append(f"only in A (not compared): {', '.join(self.only_in_a)}")
        if self.only_in_b:
            lines.append(f"only in B (not compared): {', '.join(self.only_in_b)}")
        lines += self.notes
        if self.pooled is not None:
            lines.append(self.pooled.line())
        lines += self.power
        regs = self.regressions
        lines.append(f"{len(regs)} significant regression(s)"
                     + (": " + ", ".join(g.label for g in regs) if regs else "")
                     + ("; the pooled test finds a significant regression" if self.pooled_regression else ""))
        return "\n".join(lines)


def _select(records: Iterable[RunRecord], model: str | None, strategy: str | None) -> list[RunRecord]:
    return [r for r in records if (model is None or fnmatch.fnmatchcase(r.model_id, model))
            and (strategy is None or fnmatch.fnmatchcase(r.strategy, strategy))]


def _success(rec: RunRecord, metric: str) -> bool:
    return bool(rec.strict_success if metric == "strict" else rec.legacy_success)


def _groups(records: list[RunRecord], by: Sequence[str]) -> dict[tuple, list[RunRecord]]:
    out: dict[tuple, list[RunRecord]] = {}
    for r in records:
        out.setdefault(tuple(getattr(r, f) for f in by), []).append(r)
    return out


def compare(
    a: Iterable[RunRecord],
    b: Iterable[RunRecord],
    *,
    alpha: float = 0.05,
    by: Sequence[str] | None = None,
    metric: str = "strict",
    a_model: str | None = None,
    b_model: str | None = None,
    a_strategy: str | None = None,
    b_strategy: str | None = None,
    a_label: str = "A",
    b_label: str = "B",
    a_baseline: bool = False,
    b_baseline: bool = False,
    a_incomplete: str | None = None,
    b_incomplete: str | None = None,
) -> Comparison:
    """Compare runs ``a`` with runs ``b`` group by group (see the module docstring).

    ``a_model``/``b_model``: keep only runs whose model id matches this glob on that side (e.g.
    two models of one run: ``compare(runs, runs, a_model="gpt-4o", b_model="phi4")``);
    ``a_strategy``/``b_strategy`` the same for the repair strategy (``compare(runs, runs,
    a_strategy="stateless", b_strategy="conversation")`` pairs each run with the other strategy's
    run of the same case, model and repetition). ``by`` defaults to ``("case", "model_id")``;
    without ``model_id`` when both model filters are given (the ids differ by design);
    ``("stage",)`` when either side is a baseline (the paper's cases are its stages and its model
    ids are its own); plus ``"strategy"`` when a side (after the filters) holds several strategies.
    ``a_incomplete``/``b_incomplete``: why that side's report is incomplete (it makes the comparison
    not comparable).
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    sel_a, sel_b = _select(a, a_model, a_strategy), _select(b, b_model, b_strategy)
    if by is None:
        if a_baseline or b_baseline:
            by = ("stage",)
        elif a_model is not None and b_model is not None:
            by = ("case",)
        else:
            by = ("case", "model_id")
        if any(len({r.strategy for r in side}) > 1 for side in (sel_a, sel_b)):
            by += ("strategy",)  # never pool strategies: each is its own population
    by = tuple(by)
    ga, gb = _groups(sel_a, by), _groups(sel_b, by)
    label = lambda key: " × ".join(map(str, key)) or "all"  # noqa: E731
    shared = sorted(set(ga) & set(gb), key=lambda k: tuple(map(str, k)))
    results = [_compare_group(dict(zip(by, key)), ga[key], gb[key], alpha, metric, a_baseline or b_baseline)
               for key in shared]
    notes = []
    not_comparable = [f"{side} report is incomplete ({why})"
                      for side, why in (("A's", a_incomplete), ("B's", b_incomplete)) if why]
    not_comparable += [f"{side} has {problem}" for side, runs in (("A", [r for k in shared for r in ga[k]]),
                                                                 ("B", [r for k in shared for r in gb[k]]))
                       for problem in _no_verdict(runs)]
    if a_baseline or b_baseline:
        notes.append("a baseline is involved: its runs are independent of ours, so every group is unpaired "
                     "(Fisher's exact test)")
        if metric == "strict":
            notes.append("the paper baseline's success is the paper's weak check (no strict oracle): "
                         "use --metric legacy for a like-for-like comparison")
    pooled = pooled_test(results, alpha) if len(results) > 1 else None
    return Comparison(
        a_label=a_label, b_label=b_label, alpha=alpha, metric=metric, by=by, groups=results,
        not_comparable=not_comparable, pooled=pooled, power=power_lines(results, pooled, alpha),
        only_in_a=[label(k) for k in sorted(set(ga) - set(gb), key=lambda k: tuple(map(str, k)))],
        only_in_b=[label(k) for k in sorted(set(gb) - set(ga), key=lambda k: tuple(map(str, k)))],
        notes=notes,
    )


def _no_verdict(runs: list[RunRecord]) -> list[str]:
    """What a side holds that has no verdict: errors by category, crashed and incomplete runs."""
    counts: dict[str, int] = {}
    for r in runs:
        if not finished(r):
            kind = error_category(r) if r.status == RunStatus.ERROR else r.status
            counts[kind] = counts.get(kind, 0) + 1
    return [f"{n} {kind} run(s)" for kind, n in sorted(counts.items())]


def _compare_group(key: dict[str, Any], ra: list[RunRecord], rb: list[RunRecord], alpha: float, metric: str,
                   baseline: bool) -> GroupComparison:
    done_a, done_b = [r for r in ra if finished(r)], [r for r in rb if finished(r)]
    sa = sum(_success(r, metric) for r in done_a)
    sb = sum(_success(r, metric) for r in done_b)
    # pairing is decided on every run, so a crash does not turn a paired design into an unpaired one
    reps_a = [r.repetition for r in ra]
    reps_b = [r.repetition for r in rb]
    why = ""
    if baseline:
        why = "baseline"
    elif len(set(reps_a)) != len(reps_a) or len(set(reps_b)) != len(reps_b):
        why = "several runs per repetition"
    elif set(reps_a) != set(reps_b):
        why = (f"different repetition counts ({len(ra)} vs {len(rb)})" if len(ra) != len(rb)
               else "different repetition numbers")
    n_a, n_b = len(done_a), len(done_b)
    if why:
        p = fisher_exact(sa, n_a, sb, n_b)
        out = dict(test=FISHER, paired=False, p_value=p, why_unpaired=why)
    else:
        by_rep = {r.repetition: r for r in done_b}
        pairs = [(_success(r, metric), _success(by_rep[r.repetition], metric))
                 for r in done_a if r.repetition in by_rep]
        a_only = sum(x and not y for x, y in pairs)
        b_only = sum(y and not x for x, y in pairs)
        p = mcnemar_exact(a_only, b_only)
        out = dict(test=MCNEMAR, paired=True, p_value=p, pairs=len(pairs), a_only=a_only, b_only=b_only)
    # the direction: of the pairs when paired (the same as the rates unless a run did not finish)
    lower, higher = ((out["b_only"] < out["a_only"], out["b_only"] > out["a_only"]) if out["paired"]
                     else (sb * n_a < sa * n_b, sb * n_a > sa * n_b))
    significant = p < alpha
    return GroupComparison(
        key=key, n_a=n_a, successes_a=sa, n_b=n_b, successes_b=sb, significant=significant,
        regression=significant and lower, improvement=significant and higher, **out,
    )
