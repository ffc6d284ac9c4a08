"""Write the results of a session to disk and summarise them for the terminal.

Files written by :func:`write_report` (each atomically: temp file in the same directory, then
``os.replace``):

* ``results.json`` — ``{"complete", "provenance", "runs": [RunRecord.to_dict(), ...]}``
* ``runs.csv`` / ``attempts.csv`` / ``summary.csv`` — the tables of :mod:`pytest_autopilot.results.stats`
* ``summary.json`` — ``{"complete", "provenance", "summary": [row, ...]}``
* with ``extended=True``: ``stats.json`` — ``{"complete", "provenance", "groups": [...]}``, the
  research statistics of :func:`pytest_autopilot.results.stats.group_stats` per (case, model)

``summary.csv``/``summary.json`` are projected from the same per-(case, model) statistics as
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
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pytest_autopilot.core.records import RunRecord
from pytest_autopilot.core.util import atomic_write, finite, fmt_num
from pytest_autopilot.results import stats
from pytest_autopilot.results.provenance import is_baseline

MAX_LINE = 160

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


def write_report(
    out_dir: Path, records: list[RunRecord], provenance: dict, complete: bool = True, *,
    extended: bool = False, html: bool = False, baseline: LoadedRun | None = None,
) -> dict[str, Path]:
    """Write results.json, runs.csv, attempts.csv, summary.csv and summary.json into ``out_dir``.

    Returns a mapping of file name to written path. ``complete=False`` marks a partial report
    (interrupted session); the summary of whatever ran is still written. ``extended`` adds
    ``stats.json``, ``html`` adds ``report.html`` (with ``baseline`` side by side, if given).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = list(records)
    complete = bool(complete)
    contents = {
        "results.json": _dumps(
            {"complete": complete, "provenance": provenance, "runs": [r.to_dict() for r in records]}
        ),
        **_derived(records, provenance, complete, extended=extended, html=html, baseline=baseline),
    }
    return {name: atomic_write(out_dir / name, text) for name, text in contents.items()}


def _derived(records: list[RunRecord], provenance: dict, complete: bool, *, extended: bool, html: bool,
             baseline: LoadedRun | None) -> dict[str, str]:
    """The text of every file derived from the records (all but results.json)."""
    runs = stats.runs_frame(records)
    attempts = stats.attempts_frame(records)
    groups = stats.group_stats(records, baseline=is_baseline(provenance))
    summary = stats.summary_frame(groups)  # the same statistics as stats.json
    contents = {
        "runs.csv": _csv(runs),
        "attempts.csv": _csv(attempts),
        "summary.csv": _csv(summary),
        "summary.json": _dumps(
            {"complete": complete, "provenance": provenance, "summary": summary.to_dict(orient="records")}
        ),
    }
    if extended:
        contents["stats.json"] = _dumps(
            {"complete": complete, "provenance": provenance, "groups": [g.to_dict() for g in groups]}
        )
    if html:
        from pytest_autopilot.results.html import render_html

        contents["report.html"] = render_html(records, provenance, complete, baseline=baseline)
    return contents


def load_results(path: Path) -> LoadedRun:
    """Read a ``results.json`` back: (records, provenance, complete)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
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


def regenerate(run_dir: Path, *, html: bool = False, baseline: LoadedRun | None = None) -> dict[str, Path]:
    """Rewrite every derived file (CSVs, summary.json, stats.json, optionally report.html) of a
    report folder from its results.json, which is left untouched."""
    run_dir = Path(run_dir)
    records, provenance, complete = load_results(run_dir / "results.json")
    contents = _derived(records, provenance, complete, extended=True, html=html, baseline=baseline)
    return {name: atomic_write(run_dir / name, text) for name, text in contents.items()}


# ---------------------------------------------------------------------------------------------
# terminal


def _rate_ci(rate: Any, low: Any, high: Any) -> str:
    if finite(rate) is None:
        return "n/a"
    return f"{fmt_num(rate)} [{fmt_num(low)}-{fmt_num(high)}]"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 2, 1)] + ".."


def terminal_lines(summary: pd.DataFrame) -> list[str]:
    """A compact aligned table, one line per (case, model), for the terminal summary."""
    if summary is None or summary.empty:
        return ["autopilot: no runs recorded"]
    header = ["case", "model", "runs", "strict (95% CI)", "legacy (95% CI)", "silent",
              "crash/err", "attempts avg/med", "latency avg", "tokens", "cost"]
    any_scripted = bool(summary["scripted"].any())
    rows = []
    for row in summary.itertuples(index=False):
        rows.append([
            str(row.case),
            str(row.model_id) + ("*" if row.scripted else ""),
            str(int(row.runs)),
            _rate_ci(row.strict_rate, row.strict_ci_low, row.strict_ci_high),
            _rate_ci(row.legacy_rate, row.legacy_ci_low, row.legacy_ci_high),
            str(int(row.silent_failures)),
            f"{int(row.crashed)}/{int(row.errors)}",
            f"{fmt_num(row.mean_attempts, '.1f')}/{fmt_num(row.median_attempts, '.1f')}",
            fmt_num(row.mean_latency_s, ".1f", suffix="s"),
            fmt_num(row.total_tokens, ".0f", missing="unknown"),
            fmt_num(row.total_cost_usd, ".4f", missing="unknown", prefix="$"),
        ])
    sep = "  "
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    # Shrink the two name columns (case, model) until the line fits in MAX_LINE.
    room = MAX_LINE - sum(widths[2:]) - len(sep) * (len(widths) - 1)
    while widths[0] + widths[1] > room and max(widths[0], widths[1]) > 8:
        widths[0 if widths[0] >= widths[1] else 1] -= 1
    for r in rows:
        r[0], r[1] = _clip(r[0], widths[0]), _clip(r[1], widths[1])
    left = {0, 1}  # text columns left-aligned, numbers right-aligned

    def line(cells: list[str]) -> str:
        parts = [c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return sep.join(parts).rstrip()[:MAX_LINE]

    lines = [line(header), line(["-" * w for w in widths])]
    lines += [line(r) for r in rows]
    lines.append("tokens and cost are totals per row; cost 'unknown' when any attempt's cost is unknown")
    if any_scripted:
        lines.append(
            "* answers came from the scripted stand-in, not a real LLM: these rows test the harness, "
            "not a model"
        )
    return [ln[:MAX_LINE] for ln in lines]
