"""What a comparison can say across its groups: one pooled test, and how small a change it could see.

* **Pooled test.** When every group is paired, all (group, repetition) pairs are pooled into one
  **exact McNemar test** (two-sided binomial test of the discordant pairs). With 1:1 pairs this is
  the exact form of the stratified (Cochran-Mantel-Haenszel) test with each pair its own stratum,
  so groups of different success rates pool without bias. When a group is unpaired, the groups'
  2×2 tables are pooled with the **Cochran-Mantel-Haenszel test** (continuity-corrected, one
  stratum per group). A regression across 10 cases × 3 repetitions can be seen even when no case
  alone can show one.
* **Power.** An exact McNemar test reaches ``p < alpha`` only with at least ``d`` discordant
  pairs all in one direction (``2 · 0.5^d < alpha``: 6 pairs at 0.05). So ``n`` pairs can at best
  detect a drop of ``d / n`` in the rate, and fewer than ``d`` pairs can never show a significant
  change. For an unpaired group the smallest detectable drop is from a perfect A (Fisher's test).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

MCNEMAR_POOLED = "exact McNemar over all (group, repetition) pairs (two-sided)"
CMH = "Cochran-Mantel-Haenszel over the groups' 2x2 tables (continuity-corrected, two-sided)"


@dataclass
class PooledTest:
    test: str
    groups: int
    p_value: float
    regression: bool
    improvement: bool
    pairs: int = 0  # paired: every pair of every group
    a_only: int = 0
    b_only: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        verdict = ("REGRESSION" if self.regression else "improvement" if self.improvement
                   else "no significant difference")
        counts = f", {self.a_only}:{self.b_only} of {self.pairs} pairs" if self.pairs else ""
        return f"pooled over {self.groups} group(s): {self.test}{counts}: p = {self.p_value:.4g}, {verdict}"


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (A ok/B fail, A fail/B ok)."""
    n = a_only + b_only
    if n == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(binomtest(a_only, n, 0.5, alternative="two-sided").pvalue)


def fisher_exact(successes_a: int, n_a: int, successes_b: int, n_b: int) -> float:
    """Two-sided Fisher exact p-value of the 2×2 table [[sA, fA], [sB, fB]]."""
    from scipy.stats import fisher_exact as _fisher

    table = [[successes_a, n_a - successes_a], [successes_b, n_b - successes_b]]
    return float(_fisher(table, alternative="two-sided").pvalue)


def min_discordant(alpha: float) -> int:
    """The fewest discordant pairs (all one way) an exact two-sided McNemar test finds significant."""
    d = 1
    while 2 * 0.5 ** d >= alpha:
        d += 1
    return d


def pooled_test(groups: list, alpha: float) -> PooledTest | None:
    """One test over every group of a comparison (``GroupComparison`` objects); None without groups."""
    if not groups:
        return None
    if all(g.paired for g in groups):
        a_only, b_only = sum(g.a_only for g in groups), sum(g.b_only for g in groups)
        p = mcnemar_exact(a_only, b_only)
        return PooledTest(MCNEMAR_POOLED, len(groups), p, p < alpha and b_only < a_only, p < alpha and b_only > a_only,
                          pairs=sum(g.pairs for g in groups), a_only=a_only, b_only=b_only)
    p, excess = cmh(groups)
    return PooledTest(CMH, len(groups), p, p < alpha and excess > 0, p < alpha and excess < 0)


def cmh(groups: list) -> tuple[float, float]:
    """(p-value, A's successes minus what equal rates predict) of the CMH test with one stratum per
    group; a stratum with fewer than 2 runs or no variance adds nothing."""
    from scipy.stats import chi2

    observed = expected = variance = 0.0
    for g in groups:
        n = g.n_a + g.n_b
        ok = g.successes_a + g.successes_b
        if n < 2:
            continue
        observed += g.successes_a
        expected += g.n_a * ok / n
        variance += g.n_a * g.n_b * ok * (n - ok) / (n * n * (n - 1))
    if variance == 0:
        return 1.0, 0.0
    statistic = max(abs(observed - expected) - 0.5, 0.0) ** 2 / variance
    return float(chi2.sf(statistic, 1)), observed - expected


def smallest_unpaired_drop(n_a: int, n_b: int, alpha: float) -> float | None:
    """The smallest drop from a perfect A (n_a of n_a) that Fisher's test finds significant; None when none is."""
    if not n_a or not n_b:
        return None
    for successes_b in range(n_b, -1, -1):
        if fisher_exact(n_a, n_a, successes_b, n_b) < alpha:
            return 1 - successes_b / n_b
    return None


def power_lines(groups: list, pooled: PooledTest | None, alpha: float) -> list[str]:
    """The smallest change the design could detect, and a warning where no change could reach ``p < alpha``."""
    if not groups:
        return []
    d = min_discordant(alpha)
    lines = []
    if pooled is not None and pooled.pairs:
        if pooled.pairs >= d:
            lines.append(f"power: with {pooled.pairs} pairs the pooled test needs at least {d} pairs flipping one way "
                         f"(none back) to reach p < {alpha:g}: the smallest detectable change is "
                         f"{d / pooled.pairs:.3f} of the pooled rate")
        else:
            lines.append(f"WARNING: {pooled.pairs} pairs can never reach p < {alpha:g} (at least {d} needed): "
                         "no change could be significant; add repetitions or cases")
    paired_small = [g for g in groups if g.paired and g.pairs < d]
    if paired_small:
        sizes = sorted({g.pairs for g in paired_small})
        lines.append(f"WARNING: per group, {'/'.join(map(str, sizes))} pairs can never reach p < {alpha:g} (at least "
                     f"{d} needed): no change in {len(paired_small)} of {len(groups)} group(s) could be significant "
                     "on its own" + ("; the pooled test can" if pooled and pooled.pairs >= d else ""))
    unpaired = [(g, smallest_unpaired_drop(g.n_a, g.n_b, alpha)) for g in groups if not g.paired]
    drops = [d for _, d in unpaired if d is not None]
    if drops:
        lines.append(f"power: per unpaired group, the smallest drop from a perfect A that Fisher's test can detect is "
                     f"{min(drops):.3f}" + (f" to {max(drops):.3f}" if max(drops) > min(drops) else ""))
    hopeless = [g.label for g, d in unpaired if d is None]
    if hopeless:
        lines.append(f"WARNING: no change could reach p < {alpha:g} in {len(hopeless)} unpaired group(s) (too few "
                     f"runs): {', '.join(hopeless[:5])}" + (" ..." if len(hopeless) > 5 else ""))
    return lines


def drop(g) -> float:
    """How far B's rate fell below A's (negative: it rose); NaN when a side has no finished run."""
    return g.rate_a - g.rate_b if g.n_a and g.n_b else math.nan
