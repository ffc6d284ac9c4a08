"""The self-test's findings: for each stored solution, what the strict oracle decided and which
checks rejected it, judged against what the case declares (reference: accepted; known-bad:
rejected, by its ``caught_by`` check when it names one). Also the report the self-test writes
(``selftest.json``) and its lines for the terminal.

``caught_by`` names a check as ``check`` or ``oracle.check``; it matches a failed check of that
name, or the family of a parameterised one (``no_nan`` matches ``no_nan:Red``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pytest_autopilot.core.records import Verdict
from pytest_autopilot.core.util import atomic_write, clip

LINE_CHARS = 160  # a terminal line of the self-test summary
DETAIL_CHARS = 1000  # of each rejecting check's detail in selftest.json (it is a small report)
SHORT_DETAIL_CHARS = 100  # in one-line messages


@dataclass
class SelfTestResult:
    """One stored solution through its case's oracles."""

    nodeid: str
    case: str  # the case file, relative to the rootdir
    solution: str  # the solution file, relative to the case file
    step: str  # the step key it answers, e.g. "code" or "operations/split"
    expected: str  # "accepted" (a reference or known-good alternative) or "rejected" (a known-bad solution)
    verdict: str = "error"  # "accepted", "rejected", or "error" (nothing judged it)
    oracle: str | None = None
    rejected_by: list[dict[str, str]] = field(default_factory=list)  # {"check": "oracle.check", "detail"}
    caught_by: str | None = None
    caught_by_matched: bool | None = None  # None: the case declares no caught_by for it
    category: str | None = None  # the verdict's failure category (None: accepted or never judged)
    checks: list[str] = field(default_factory=list)  # every check the oracle ran, passed or not
    legacy_accepted: bool | None = None  # the paper's own check on the same attempt (None: the stage has none)
    legacy_failed: list[str] = field(default_factory=list)  # its failed checks, "check: detail"
    duration_s: float = 0.0
    problem: str | None = None  # why the item fails; None when judged as declared
    alternative: bool = False  # a known-good alternative (``also_good``), not the reference
    caught_at: str | None = None  # the later step whose oracle rejected it (its artifact reached that step)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def deciding_check(self) -> str | None:
        """The rejecting check to name: the declared one when it matched, else the first."""
        names = [c["check"] for c in self.rejected_by]
        if self.caught_by_matched:
            oracle = self.oracle or ""
            return next(n for n in names if matches(self.caught_by, oracle, n.removeprefix(oracle + ".")))
        return names[0] if names else None


def matches(caught_by: str, oracle: str, check: str) -> bool:
    want = caught_by.removeprefix(oracle + ".")
    return check == want or check.startswith(want + ":")


def judge(result: SelfTestResult, verdict: Verdict | None, why: str, legacy: Verdict | None = None) -> SelfTestResult:
    """Fill ``result`` from the strict verdict of the solution's step (None: never judged) and the
    paper's legacy verdict of the same answer: a reference must pass both, or the case punishes a
    correct program (its legacy column, and so its silent failures, would mean nothing)."""
    name = result.solution
    if verdict is None:
        result.problem = f"{name}: step {result.step!r} was never reached (an earlier reference failed)"
        return result
    if legacy is not None:
        result.legacy_accepted = legacy.passed
        result.legacy_failed = [f"{c.name}: {clip(c.detail, SHORT_DETAIL_CHARS)}" for c in legacy.failed_checks]
    result.oracle, result.verdict = verdict.oracle, "accepted" if verdict.passed else "rejected"
    result.checks = [c.name for c in verdict.checks]
    result.category = None if verdict.passed else verdict.category
    failed = verdict.failed_checks
    result.rejected_by = [{"check": f"{verdict.oracle}.{c.name}", "detail": clip(c.detail, DETAIL_CHARS, one_line=False)}
                          for c in failed]
    if result.expected == "accepted":
        if not verdict.passed:
            checks = "; ".join(f"{c.name}: {clip(c.detail, 200)}" for c in failed)
            kind = f"known-good ({why})" if why else "reference"  # a known-good variant says what it varies
            result.problem = (f"{kind} {name} rejected by {verdict.oracle} at {result.caught_at or result.step}: "
                              f"{checks or 'no checks'}")
        elif result.legacy_accepted is False:
            result.problem = (f"reference {name} fails the paper's legacy check at {result.step} "
                              f"({'; '.join(result.legacy_failed)}): the case punishes a correct program")
        return result
    if verdict.passed:
        result.problem = f"known-bad {name} ACCEPTED by the strict oracle (it should not be: {why})"
        return result
    if result.caught_by:
        result.caught_by_matched = any(matches(result.caught_by, verdict.oracle, c.name) for c in failed)
        if not result.caught_by_matched:
            result.problem = _wrong_reason(result, verdict)
    return result


def _wrong_reason(result: SelfTestResult, verdict: Verdict) -> str:
    """Right verdict, wrong reason: which check rejected it instead, and whether the declared one exists."""
    first = verdict.failed_checks[0] if verdict.failed_checks else None
    instead = (f"{verdict.oracle}.{first.name} ({clip(first.detail, SHORT_DETAIL_CHARS)})" if first
               else f"{verdict.oracle} with no failed check")
    known = [c.name for c in verdict.checks]
    if any(matches(result.caught_by, verdict.oracle, n) for n in known):
        hint = "that check passed"
    else:
        hint = f"no check of that name ran; its checks: {', '.join(known) or 'none'}"
    return (f"known-bad {result.solution} rejected for another reason: by {instead}, not by "
            f"caught_by {result.caught_by!r} ({hint})")


def status_word(data: dict[str, Any] | None) -> str | None:
    """The -v word of a passed self-test item that rejected its known-bad solution."""
    if not data or data.get("verdict") != "rejected" or data.get("problem"):
        return None
    check = SelfTestResult(**data).deciding_check or data.get("oracle")
    later = f" at step {data['caught_at']}" if data.get("caught_at") else ""
    return f"PASSED (rejected by {check}{later})"


class SelfTestLog:
    """What the controller gathers from the self-test items' reports, for the report and the terminal."""

    def __init__(self):
        self.results: dict[str, SelfTestResult] = {}
        self.skipped: dict[str, str] = {}

    def add(self, data: dict[str, Any]) -> None:
        result = SelfTestResult(**data)
        self.results[result.nodeid] = result

    def skip(self, nodeid: str, reason: str) -> None:
        self.skipped[nodeid] = reason

    def __bool__(self) -> bool:
        return bool(self.results or self.skipped)

    def ordered(self) -> list[SelfTestResult]:
        """By case, its references first, then its known-good alternatives, then its known-bad solutions."""
        return sorted(self.results.values(), key=lambda r: (r.case, r.expected != "accepted", r.alternative, r.nodeid))

    def write(self, path: Path, run_id: str, started_at: str, finished_at: str) -> Path:
        results = self.ordered()
        failed = sum(r.problem is not None for r in results)
        data = {
            "run_id": run_id, "started_at": started_at, "finished_at": finished_at,
            "as_expected": failed == 0,
            "counts": {"judged": len(results), "as_expected": len(results) - failed, "failed": failed,
                       "skipped": len(self.skipped),
                       "caught_by_declared": sum(r.caught_by is not None for r in results)},
            "duration_s": round(sum(r.duration_s for r in results), 3),
            "variants": [r.to_dict() for r in results],
            "skipped": [{"nodeid": k, "reason": v} for k, v in sorted(self.skipped.items())],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write(path, json.dumps(data, indent=2) + "\n")

    def lines(self, report_shown: str) -> list[str]:
        """One line per judged solution (ok/FAIL, what decided), then the totals and the report's path."""
        out = [clip(f"{'FAIL' if r.problem else 'ok'} {r.nodeid.split('::')[-1]}: {_what(r)}", LINE_CHARS)
               for r in self.ordered()]
        for nodeid in sorted(self.skipped):
            out.append(clip(f"skip {nodeid.split('::')[-1]}: {self.skipped[nodeid]}", LINE_CHARS))
        bad = [r for r in self.results.values() if r.expected == "rejected"]
        declared = [r for r in bad if r.caught_by]
        out.append(f"{sum(r.problem is None for r in self.results.values())}/{len(self.results)} judged as declared; "
                   f"{sum(bool(r.caught_by_matched) for r in declared)}/{len(declared)} known-bad caught by their "
                   f"declared check, {len(bad) - len(declared)} declare none")
        out.append(f"self-test report: {report_shown}")
        return out


def _what(r: SelfTestResult) -> str:
    if r.problem:
        return r.problem
    if r.verdict == "accepted":
        return f"{'known-good alternative' if r.alternative else 'reference'} accepted by {r.oracle}"
    more = f" (+{len(r.rejected_by) - 1} more)" if len(r.rejected_by) > 1 else ""
    declared = " = caught_by" if r.caught_by_matched else ""
    check = r.deciding_check
    detail = next((c["detail"] for c in r.rejected_by if c["check"] == check), "")
    later = f" at step {r.caught_at}" if r.caught_at else ""
    return f"rejected by {check or r.oracle}{later}{declared}{more}: {detail}"
