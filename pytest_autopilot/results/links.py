"""Where the full text of a run is: its anchor in ``report.html`` and the report files, for the
short messages (terminal, junit) that point there."""

from __future__ import annotations


def run_anchor(nodeid: str) -> str:
    """The id of a run's section in report.html."""
    return "run-" + "".join(ch if ch.isalnum() else "-" for ch in nodeid)


def full_text_hint(report_dir: str, nodeid: str) -> str:
    """The tail of a short message: where its run's checks, outputs and prompts are in full."""
    return f"full text: {report_dir}/report.html#{run_anchor(nodeid)} (and results.json)"
