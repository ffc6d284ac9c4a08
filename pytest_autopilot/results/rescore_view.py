"""How a re-score (``--autopilot-rescore``) reads in the terminal: it is a measurement, not a
test run. An archived program the strict oracle judged and rejected is reported as ``rejected``
(letter ``R``), not as a pytest failure: it gets no FAILURES entry and no ``FAILED`` line, unless
the user asks for failed items with ``-r`` (``-rf``, ``-ra``, ``-rA``). A run the harness could not
judge (an error) stays a failure. The study-vs-strict table comes last, after pytest's own
closing line."""

from __future__ import annotations

import os
import shlex
from typing import Any

from pytest_autopilot.core.records import RunStatus

REJECTED = ("rejected", "R", ("REJECTED", {"red": True}))


def lists_rejections(config) -> bool:
    """Whether the user asked for failed items (an explicit ``-r`` with f, a or A)."""
    args = [*config.invocation_params.args, *shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))]
    explicit = any(str(a).startswith(("-r", "--report-chars")) for a in args)
    return explicit and any(c in (config.getoption("reportchars") or "") for c in "faA")


def rejected_status(report, run: dict[str, Any] | None, listed: bool):
    """The teststatus of a judged, rejected archived program (None: pytest's own)."""
    if listed or report.when != "call" or not report.failed or not run:
        return None
    return REJECTED if run.get("status") == RunStatus.FAILURE else None


def write_study_table(terminalreporter, lines: list[str]) -> None:
    if lines:
        terminalreporter.write_sep("=", "autopilot study vs strict")
        for line in lines:
            terminalreporter.write_line(line)
