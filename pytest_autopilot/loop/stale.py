"""``pytest-autopilot cassettes --stale``: which cassettes a prompt edit invalidates, before a sweep.

Every run starts with the first prompt of its case's first step, rendered from the case file and
its templates alone; this renders it the way the repair loop does (``loop.repair.RepairLoop``,
stopped at its first question: no model is asked, no code runs) and looks for it among the
requests recorded in each of the case's cassettes (vcrpy matches a request with any recorded
one, in any order). A cassette holding no request with those messages would miss on
replay (``cassette_miss: prompt changed since recording``). Requests after the first carry the
model's answers and the program's errors, which only a run can produce: an edit that changes
only them (a repair template, a later step's prompt) shows on replay, not here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pytest_autopilot.cases.prompts import PromptError
from pytest_autopilot.cases.spec import CaseError, is_case_file, load_case
from pytest_autopilot.llm.cassettes import recorded_messages


class _FirstQuestion(Exception):
    """Raised by the answer source to stop the loop at its first question."""

    def __init__(self, messages):
        super().__init__("first question")
        self.messages = messages


@dataclass
class StaleReport:
    cassettes: int = 0
    stale: dict[str, str] = field(default_factory=dict)  # cassette (as shown) -> why
    problems: list[str] = field(default_factory=list)  # case files that do not load or render

    def lines(self) -> list[str]:
        out = [*self.problems, *(f"{path}: stale: {why}" for path, why in sorted(self.stale.items()))]
        cases = len({str(Path(p).parent) for p in self.stale})
        out.append(f"{self.cassettes} cassette(s) compared with the first prompt their case renders now: "
                   + (f"{len(self.stale)} stale in {cases} case(s) (re-record them with --record-mode=all)"
                      if self.stale else "none stale")
                   + (f"; {len(self.problems)} case file(s) could not be rendered" if self.problems else ""))
        return out


def first_messages(case) -> list[dict[str, str]]:
    """The messages of a run's first request, as the repair loop renders them."""
    from pytest_autopilot.loop.repair import LoopSettings, RepairLoop

    def ask(messages, meta):
        raise _FirstQuestion(messages)

    settings = LoopSettings(max_attempts=1, error_chars=2000, extract_policy="first", limits=None)
    try:
        RepairLoop(case, ask, executor=None, settings=settings).run()
    except _FirstQuestion as asked:
        return asked.messages
    raise AssertionError("the repair loop asked nothing")  # pragma: no cover -- every case has a first step


def _difference(now: list[dict], recorded: list[list] | None) -> str | None:
    if recorded is None:
        return "not a readable cassette (run `pytest-autopilot cassettes` for the reason)"
    if now in recorded:
        return None
    a = now[-1]["content"]
    firsts = [m for m in recorded if len(m) == len(now) and isinstance(m[-1], dict)] or [[{"content": ""}]]
    b = max((m[-1].get("content", "") for m in firsts), key=lambda text: _common_prefix(a, text))
    at = _common_prefix(a, b)
    return (f"no recorded request has the first prompt the case renders now; the closest differs from line "
            f"{a.count(chr(10), 0, at) + 1} on (now: {a[at:at + 40]!r}, recorded: {b[at:at + 40]!r})")


def _common_prefix(a: str, b: str) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def find_stale(cases_dir: Path, prompts_dir: Path, hardware_dir: Path, cassettes_dir: Path,
               shown=lambda p: str(p)) -> StaleReport:
    """Compare each case's first prompt with the first request of each of its cassettes
    (``cassettes/<case path under cases/>/*.yaml``)."""
    report = StaleReport()
    for case_file in sorted(cases_dir.rglob("*.y*ml")):
        if not is_case_file(case_file, cases_dir):
            continue
        folder = cassettes_dir.joinpath(*case_file.relative_to(cases_dir).with_suffix("").parts)
        cassettes = sorted(folder.glob("*.yaml")) if folder.is_dir() else []
        if not cassettes:
            continue
        try:
            now = first_messages(load_case(case_file, prompts_dir, hardware_dir))
        except (CaseError, PromptError) as exc:
            report.problems.append(str(exc).replace(str(case_file), shown(case_file)))
            continue
        for cassette in cassettes:
            report.cassettes += 1
            why = _difference(now, recorded_messages(cassette))
            if why:
                report.stale[shown(cassette)] = why
    return report
