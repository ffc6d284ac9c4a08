"""The study-vs-strict table of a re-score: for archived programs whose study verdict is known
(``params.study_verdict``, from ``cases.archive``: the paper's ``valid_`` folders, or a manifest),
per (case, model): how many the study counted as successes, how many of those the paper's check
still passes when re-run here (legacy re-check), how many the strict oracle accepts, and the
study successes the strict oracle rejects (``strict_rejected``), by the first check they fail.
These are not the sweep summary's *silent failures* (the paper's check re-run here passes, the
strict oracle rejects): the study's verdict was recorded then, the legacy re-check is run now,
so the two differ when a program behaves differently here; each keeps its own name everywhere.

Written as ``study.csv`` (one row per case and model) and ``study.json`` (the rows, each with its
breakdown) into the report folder, and printed last in the terminal.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from pytest_autopilot.core.records import RunRecord, RunStatus

COLUMNS = ("case", "model_id", "programs", "study_known", "study_success", "legacy_recheck", "strict",
           "strict_rejected", "strict_rejected_by_first_failed_check")


def first_failed_check(record: RunRecord) -> str:
    """The first check the strict oracle failed on the run's last attempt (or why nothing was judged)."""
    if record.status == RunStatus.ERROR:
        return "harness_error"
    last = record.attempts[-1] if record.attempts else None
    if last is None or last.strict is None:
        return "not_judged"
    failed = last.strict.failed_checks
    return failed[0].name if failed else "none"


def study_rows(records: list[RunRecord]) -> list[dict[str, Any]]:
    """One row per (case, model) that has archived programs with a known study verdict."""
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for r in records:
        if "study_verdict" in (r.params or {}):
            groups.setdefault((r.case, r.model_id), []).append(r)
    rows = []
    for (case, model_id), runs in sorted(groups.items()):
        known = [r for r in runs if r.params.get("study_verdict") in ("success", "failure")]
        if not known:
            continue
        successes = [r for r in known if r.params["study_verdict"] == "success"]
        rejected = [r for r in successes if not r.strict_success]
        by_check = Counter(first_failed_check(r) for r in rejected)
        rows.append({
            "case": case, "model_id": model_id, "programs": len(runs), "study_known": len(known),
            "study_success": len(successes),
            "legacy_recheck": sum(r.legacy_success for r in successes),
            "strict": sum(r.strict_success for r in successes),
            "strict_rejected": len(rejected),
            "strict_rejected_by_first_failed_check": dict(sorted(by_check.items(), key=lambda kv: (-kv[1], kv[0]))),
        })
    return rows


def study_files(rows: list[dict[str, Any]]) -> dict[str, str]:
    """``study.csv`` and ``study.json`` of the :func:`study_rows` (nothing when there are none: no
    re-scored program has a study verdict)."""
    if not rows:
        return {}
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        breakdown = "; ".join(f"{k} {v}" for k, v in row["strict_rejected_by_first_failed_check"].items())
        writer.writerow([*(row[c] for c in COLUMNS[:-1]), breakdown])
    return {"study.csv": buf.getvalue(), "study.json": json.dumps({"study": rows}, indent=2) + "\n"}


def study_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The table for the terminal of the :func:`study_rows`: of the study's successes, how many hold
    up (names in full)."""
    if not rows:
        return []
    case_w = max(4, *(len(r["case"]) for r in rows))
    model_w = max(5, *(len(r["model_id"]) for r in rows))
    lines = ["study vs strict (of the programs the study counted as successes):",
             f"{'case':<{case_w}} {'model':<{model_w}} {'study ok':>8} {'legacy':>7} {'strict':>7} {'rejected':>8}  "
             "first failed check of the rejected"]
    for row in rows:
        breakdown = ", ".join(f"{k} {v}" for k, v in row["strict_rejected_by_first_failed_check"].items()) or "-"
        lines.append(f"{row['case']:<{case_w}} {row['model_id']:<{model_w}} {row['study_success']:>8} "
                     f"{row['legacy_recheck']:>7} {row['strict']:>7} {row['strict_rejected']:>8}  {breakdown}")
    lines.append("legacy: the paper's check re-run here; rejected: study successes the strict oracle rejects "
                 "(not the summary's 'silent': legacy passes here, strict rejects)")
    return lines
