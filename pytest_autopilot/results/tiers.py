"""The per-tier roll-up of a run (issue 23): its runs pooled by (difficulty tier, model, repair
strategy), with the same statistics as every other group (:func:`groups.group_stats`): strict
rate with its Wilson interval, pass@k, attempts. ``tiers.csv``, the ``tiers`` entries of
``summary.json`` and ``stats.json``, the terminal's roll-up lines and the HTML's "Per tier"
table all come from :func:`tier_groups`. Runs without a tier (imported paper runs) are left out.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from pytest_autopilot.core.records import RunRecord
from pytest_autopilot.core.util import fmt_num
from pytest_autopilot.results.groups import GroupStats, group_stats, summary_frame

TIER_GROUPING = ("tier", "model_id", "strategy")
TIER_COLUMNS = [
    "tier", "model_id", "strategy", "cases", "runs", "finished", "strict_successes", "strict_rate",
    "strict_ci_low", "strict_ci_high", "legacy_rate", "silent_failures", "mean_attempts", "median_attempts",
    "mean_attempts_per_step", "mean_repairs", "scripted",
]


def tier_groups(records: Iterable[RunRecord]) -> list[GroupStats]:
    """One group per (tier, model_id, strategy), sorted by them; runs without a tier left out."""
    return group_stats([r for r in records if r.tier is not None], TIER_GROUPING)


def tier_label(g: GroupStats) -> str:
    return f"tier {g.tier} × {g.model_id} × {g.strategy}"


def tier_frame(records: Iterable[RunRecord], groups: list[GroupStats] | None = None) -> pd.DataFrame:
    """``tiers.csv``: the summary columns of each tier group (``groups``: the records' tier groups,
    when computed already), and how many cases it pools."""
    records = [r for r in records if r.tier is not None]
    groups = tier_groups(records) if groups is None else groups
    frame = summary_frame(groups)
    if frame.empty:
        return pd.DataFrame(columns=TIER_COLUMNS)
    frame["cases"] = [len({r.case for r in records if (r.tier, r.model_id, r.strategy) == (g.tier, g.model_id, g.strategy)})
                      for g in groups]
    return frame[TIER_COLUMNS]


def tier_lines(frame: pd.DataFrame) -> list[str]:
    """The terminal's per-tier roll-up of a :func:`tier_frame`: one line per (tier, model, strategy)."""
    if frame.empty:
        return []
    lines = ["per tier (all cases of a tier pooled):"]
    for row in frame.itertuples(index=False):
        rate = ("n/a" if row.finished == 0 else
                f"{fmt_num(row.strict_rate)} [{fmt_num(row.strict_ci_low)}-{fmt_num(row.strict_ci_high)}]")
        lines.append(f"  tier {row.tier}  {row.model_id}{'*' if row.scripted else ''}  {row.strategy}: "
                     f"{row.cases} case(s), {row.runs} run(s), strict {row.strict_successes}/{row.finished} = {rate}, "
                     # per step: a tier pools one-step cases with pipelines, whose attempts add up over steps
                     f"attempts per step {fmt_num(row.mean_attempts_per_step, '.1f')}, "
                     f"repairs per run {fmt_num(row.mean_repairs, '.1f')}")
    return lines
