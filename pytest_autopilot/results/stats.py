"""The statistics of a set of runs, in one namespace (``from pytest_autopilot.results import stats``).

Two concepts, one module each:

* :mod:`pytest_autopilot.results.frames` -- the records as tables: one row per run
  (:func:`runs_frame`), one row per attempt (:func:`attempts_frame`), run-level aggregates of
  imported runs (:data:`RUN_TOTAL_STEP`), the statuses of runs that did not finish (:data:`UNFINISHED`) or have no verdict (:data:`NO_VERDICT`);
* :mod:`pytest_autopilot.results.groups` -- the research statistics per group of runs
  (:func:`group_stats`: Wilson intervals, pass@k / pass^k, success by attempt, distributions,
  failure taxonomy, silent-failure and repeated-answer rates) and the one-row-per-(case, model,
  strategy) summary projected from them (:func:`summary_frame`, :func:`summarise`), so
  ``summary.csv`` and ``stats.json`` agree.
"""

from __future__ import annotations

from pytest_autopilot.results.frames import (
    ATTEMPT_COLUMNS,
    NO_VERDICT,
    RUN_COLUMNS,
    RUN_TOTAL_STEP,
    UNFINISHED,
    attempts_frame,
    error_category,
    finished,
    runs_frame,
)
from pytest_autopilot.results.groups import (
    DEFAULT_GROUPING,
    DISTRIBUTION_STATS,
    GROUP_COLUMNS_HEAD,
    SUMMARY_COLUMNS,
    TAXONOMY,
    UNKNOWN_CATEGORY,
    GroupStats,
    attempt_failed,
    describe,
    group_stats,
    group_stats_frame,
    pass_at_k,
    pass_hat_k,
    summarise,
    summary_frame,
    wilson_interval,
)

__all__ = [
    "ATTEMPT_COLUMNS", "DEFAULT_GROUPING", "NO_VERDICT", "DISTRIBUTION_STATS", "GROUP_COLUMNS_HEAD", "RUN_COLUMNS",
    "RUN_TOTAL_STEP", "SUMMARY_COLUMNS", "TAXONOMY", "UNFINISHED", "UNKNOWN_CATEGORY", "GroupStats",
    "attempt_failed", "attempts_frame", "describe", "error_category", "finished", "group_stats", "group_stats_frame",
    "pass_at_k", "pass_hat_k", "runs_frame", "summarise", "summary_frame", "wilson_interval",
]
