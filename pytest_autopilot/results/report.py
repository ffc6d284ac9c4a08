"""Write the results of a session to disk and summarise them for the terminal.

Files written by :func:`write_report` (each atomically: temp file in the same directory, then
``os.replace``):

* ``results.json`` — ``{"complete", "incomplete_reason", "not_run", "provenance", "runs": [RunRecord.to_dict(), ...]}``;
  ``complete`` is false when anything was left out (``incomplete_reason`` says what: an interrupt,
  a stop at -x/--maxfail, case files that could not be loaded, which ``not_run`` lists as
  ``{"case", "error"}``)
* ``runs.csv`` / ``attempts.csv`` / ``summary.csv`` — the tables of :mod:`pytest_autopilot.results.stats`
* ``tiers.csv`` — the per-tier roll-up (:mod:`pytest_autopilot.results.tiers`): one row per (tier, model, strategy)
* ``summary.json`` — ``{"complete", "incomplete_reason", "not_run", "provenance", "summary": [row, ...],
  "tiers": [row, ...]}``;
  both summaries end with ``metric_<name>_<n|mean|ci_low|ci_high>`` per oracle metric (over the passed runs)
* ``check_failures.csv`` — per group and failed check: in how many finished runs and judged attempts it
  failed (:mod:`pytest_autopilot.results.metrics`)
* with ``extended=True``: ``stats.json`` — the same header and ``"groups": [...]``, the
  research statistics of :func:`pytest_autopilot.results.stats.group_stats` per (case, model, strategy),
  and ``"tiers": [...]``, the same per (tier, model, strategy)

``summary.csv``/``summary.json`` are projected from the same per-(case, model, strategy) statistics as
``stats.json`` (:func:`pytest_autopilot.results.stats.summary_frame`), so they agree on every
number they share.
* with ``html=True``: ``report.html`` — one self-contained page (:mod:`pytest_autopilot.results.html`),
  with an optional baseline run side by side

:func:`regenerate` rewrites every derived file of a report folder from its ``results.json``
(which it never rewrites).

JSON never contains ``NaN``/``Infinity``: non-finite numbers are written as ``null``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pytest_autopilot.core.records import RunRecord
from pytest_autopilot.core.util import atomic_write, finite, fmt_num
from pytest_autopilot.results import stats
from pytest_autopilot.results.metrics import check_failures_frame
from pytest_autopilot.results.provenance import is_baseline
from pytest_autopilot.results.groups import GroupStats
from pytest_autopilot.results.study import study_files, study_rows
from pytest_autopilot.results.tiers import tier_frame, tier_groups, tier_lines

MAX_LINE = 180  # a wide terminal: 15 columns of figures leave the three name columns about 50

# a loaded run: (records, provenance, complete), as load_results returns it
LoadedRun = tuple[list[RunRecord], dict, bool]


# ---------------------------------------------------------------------------------------------
# writing


def jsonable(value: Any) -> Any:
    """Recursively turn numpy/pandas scalars into Python ones and non-finite floats into None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _dumps(data: Any) -> str:
    # default=str: provenance is stored as passed; a stray Path/datetime must not lose the report.
    return json.dumps(jsonable(data), indent=2, allow_nan=False, default=str) + "\n"


def _csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, lineterminator="\n")


@dataclass
class ReportTables:
    """What a report's files and its terminal lines both show, computed once per report."""

    groups: list[GroupStats]  # per (case, model, strategy)
    summary: pd.DataFrame  # their summary.csv
    tier_groups: list[GroupStats]
    tiers: pd.DataFrame  # tiers.csv
    study: list[dict[str, Any]]  # the study-vs-strict rows of a re-score

    def terminal_lines(self) -> list[str]:
        """The terminal's summary table and its per-tier roll-up."""
        return [*terminal_lines(self.summary), *tier_lines(self.tiers)]


def report_tables(records: list[RunRecord], *, baseline: bool = False) -> ReportTables:
    groups = stats.group_stats(records, baseline=baseline)
    tiered = tier_groups(records)
    return ReportTables(groups, stats.summary_frame(groups), tiered, tier_frame(records, tiered), study_rows(records))


def write_report(
    out_dir: Path, records: list[RunRecord], provenance: dict, complete: bool = True, *,
    extended: bool = False, html: bool = False, baseline: LoadedRun | None = None,
    not_run: list[dict] | None = None, incomplete_reason: str | None = None, tables: ReportTables | None = None,
) -> dict[str, Path]:
    """Write results.json, runs.csv, attempts.csv, summary.csv and summary.json into ``out_dir``.

    Returns a mapping of file name to written path. ``complete=False`` marks a partial report
    (``incomplete_reason`` says why); so does any ``not_run`` entry. The summary of whatever ran
    is still written. ``extended`` adds ``stats.json``, ``html`` adds ``report.html`` (with
    ``baseline`` side by side, if given). ``tables``: the records' :func:`report_tables`, when the
    caller shows them too.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = list(records)
    status = _status(complete, not_run, incomplete_reason)
    contents = {
        "results.json": _dumps({**status, "provenance": provenance, "runs": [r.to_dict() for r in records]}),
        **_derived(records, provenance, status, extended=extended, html=html, baseline=baseline, tables=tables),
    }
    return {name: atomic_write(out_dir / name, text) for name, text in contents.items()}


def _status(complete: bool, not_run: list[dict] | None, reason: str | None) -> dict[str, Any]:
    """The header every JSON file of a report starts with."""
    not_run = list(not_run or [])
    complete = bool(complete) and not not_run
    if not complete and reason is None:
        reason = f"{len(not_run)} case file(s) could not be loaded (see not_run)" if not_run else "interrupted"
    return {"complete": complete, "incomplete_reason": None if complete else reason, "not_run": not_run}


def _derived(records: list[RunRecord], provenance: dict, status: dict[str, Any], *, extended: bool, html: bool,
             baseline: LoadedRun | None, tables: ReportTables | None = None) -> dict[str, str]:
    """The text of every file derived from the records (all but results.json)."""
    runs = stats.runs_frame(records)
    attempts = stats.attempts_frame(records)
    tables = tables or report_tables(records, baseline=is_baseline(provenance))
    groups, summary, tiers = tables.groups, tables.summary, tables.tiers  # summary: the statistics of stats.json
    contents = {
        "runs.csv": _csv(runs),
        "attempts.csv": _csv(attempts),
        "summary.csv": _csv(summary),
        "check_failures.csv": _csv(check_failures_frame(groups)),  # which checks fail, per group
        "tiers.csv": _csv(tiers),
        "summary.json": _dumps({**status, "provenance": provenance, "summary": summary.to_dict(orient="records"),
                                "tiers": tiers.to_dict(orient="records")}),
    }
    if extended:
        contents["stats.json"] = _dumps({**status, "provenance": provenance, "groups": [g.to_dict() for g in groups],
                                         "tiers": [g.to_dict() for g in tables.tier_groups]})
    contents.update(study_files(tables.study))  # re-scored archives with the study's own verdicts
    if html:
        from pytest_autopilot.results.html import render_html

        contents["report.html"] = render_html(records, provenance, status["complete"], baseline=baseline,
                                              incomplete_reason=status["incomplete_reason"], tables=tables)
    return contents


def load_results(path: Path) -> LoadedRun:
    """Read a ``results.json`` back: (records, provenance, complete)."""
    return _loaded(json.loads(Path(path).read_text(encoding="utf-8")))


def _loaded(data: dict) -> LoadedRun:
    records = [RunRecord.from_dict(r) for r in data.get("runs", [])]
    return records, data.get("provenance") or {}, bool(data.get("complete", False))


def resolve_run_dir(run: str | Path, reports_dir: str | Path | None = None) -> Path:
    """A report folder from a folder path, a ``results.json`` path, or a run id under ``reports_dir``."""
    path = Path(run)
    if path.name == "results.json" and path.is_file():
        return path.parent
    if (path / "results.json").is_file():
        return path
    if reports_dir is not None and (Path(reports_dir) / str(run) / "results.json").is_file():
        return Path(reports_dir) / str(run)
    where = f" (nor a run id under {reports_dir})" if reports_dir is not None else ""
    raise FileNotFoundError(f"{run}: no results.json there{where}")


def regenerate(run_dir: Path, *, html: bool = False, baseline: LoadedRun | None = None,
               tables: ReportTables | None = None) -> dict[str, Path]:
    """Rewrite every derived file (CSVs, summary.json, stats.json, optionally report.html) of a
    report folder from its results.json, which is left untouched (``tables``: as for write_report)."""
    run_dir = Path(run_dir)
    data = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    records, provenance, complete = _loaded(data)
    status = _status(complete, data.get("not_run"), data.get("incomplete_reason"))
    contents = _derived(records, provenance, status, extended=True, html=html, baseline=baseline, tables=tables)
    return {name: atomic_write(run_dir / name, text) for name, text in contents.items()}


# ---------------------------------------------------------------------------------------------
# terminal


def _rate_ci(rate: Any, low: Any, high: Any) -> str:
    if finite(rate) is None:
        return "n/a"
    return f"{fmt_num(rate)} [{fmt_num(low)}-{fmt_num(high)}]"


def _wrap(text: str, width: int) -> list[str]:
    """``text`` in pieces of at most ``width`` characters, broken after a ``-``, ``_``, ``.`` or ``:``
    where one is near (a name is shown in full, on several lines)."""
    pieces = []
    while len(text) > width:
        cut = max(text.rfind(sep, 0, width) for sep in "-_.:") + 1
        cut = cut if cut > width // 2 else width
        pieces.append(text[:cut])
        text = text[cut:]
    return [*pieces, text]


def terminal_lines(summary: pd.DataFrame) -> list[str]:
    """A compact aligned table, one line per (case, model, strategy), for the terminal summary."""
    if summary is None or summary.empty:
        return ["autopilot: no runs recorded"]
    header = ["case", "T", "model", "strategy", "runs", "strict (95% CI)", "legacy (95% CI)", "silent",
              "crash/inc/err", "att/step (rep)", "repeats", "stuck", "latency", "tokens", "cost"]
    any_scripted = bool(summary["scripted"].any())
    any_human = "human" in summary and bool(summary["human"].any())
    rows = []
    for row in summary.itertuples(index=False):
        rows.append([
            str(row.case),
            "-" if pd.isna(row.tier) else str(int(row.tier)),
            str(row.model_id) + ("*" if row.scripted else "") + ("^" if getattr(row, "human", False) else ""),
            str(row.strategy),
            str(int(row.runs)),
            _rate_ci(row.strict_rate, row.strict_ci_low, row.strict_ci_high),
            _rate_ci(row.legacy_rate, row.legacy_ci_low, row.legacy_ci_high),
            str(int(row.silent_failures)),
            f"{int(row.crashed)}/{int(row.incomplete)}/{int(row.errors)}",
            f"{fmt_num(row.mean_attempts_per_step, '.1f')} ({fmt_num(row.mean_repairs, '.1f')})",
            f"{int(row.repeated_answers)} ({fmt_num(row.repeated_answer_rate, '.2f')})",
            f"{int(row.stuck_retries)} ({fmt_num(row.stuck_rate, '.2f')})",
            fmt_num(row.mean_latency_s, ".1f", suffix="s"),
            fmt_num(row.total_tokens, ".0f", missing="unknown"),
            fmt_num(row.total_cost_usd, ".4f", missing="unknown", prefix="$"),
        ])
    sep = "  "
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    left = (0, 2, 3)  # the name columns (case, model, strategy): left-aligned; numbers right-aligned
    # Narrow the widest name column until the line fits in MAX_LINE; a longer name wraps, never cut.
    room = MAX_LINE - sum(widths[len(left):]) - len(sep) * (len(widths) - 1)
    while sum(widths[i] for i in left) > room and max(widths[i] for i in left) > 8:
        widths[max(left, key=lambda i: widths[i])] -= 1

    def line(cells: list[str]) -> str:
        parts = [c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return sep.join(parts).rstrip()

    lines = [line(header), line(["-" * w for w in widths])]
    for r in rows:
        pieces = {i: _wrap(r[i], widths[i]) for i in left}
        lines.append(line([pieces[i][0] if i in left else c for i, c in enumerate(r)]))
        for k in range(1, max(len(p) for p in pieces.values())):  # the rest of a long name, under itself
            lines.append(line([(pieces[i][k] if k < len(pieces[i]) else "") if i in left else ""
                               for i in range(len(r))]))
    lines.append("rates are over finished runs (crash/inc/err: no verdict); att/step: mean attempts per step; (rep): "
                 "mean repairs per run, the attempts beyond the first of each step")
    lines.append("repeats: answers equal to an earlier one of their step; stuck: the previous attempt's first error "
                 "again (rates over retries)")
    stopped = int(summary["stopped_early"].sum())
    if stopped:
        lines.append(f"{stopped} run(s) stopped before their pipeline's last step: no whole-pipeline legacy verdict, so "
                     "never legacy successes nor silent failures (stopped_at_step in runs.csv)")
    lines.append("T: the case's tier (1 a bounded sub-task, 2 a stage, 3 headroom); the per-tier roll-up follows")
    lines.append("silent: silent failures, runs the paper's check (re-run here) passes and the strict oracle rejects")
    lines.append("latency is the mean per run; tokens and cost are totals per row; cost 'unknown' when any "
                 "attempt's cost is unknown")
    if any_scripted:
        lines.append(
            "* answers came from the scripted stand-in, not a real LLM: these rows test the harness, "
            "not a model"
        )
    if any_human:
        lines.append("^ answers came from a person (the human baseline), not an LLM")
    return [ln[:MAX_LINE] for ln in lines]
