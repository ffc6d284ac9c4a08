"""The live progress line of a sweep: runs done / total, strict successes so far, the ETA and the
share of run time spent waiting for the LLM, and -- while any of its steps wait for a CPU slot --
how many, and whether another session on the machine holds slots. Drawn by the controller (under
xdist it sees every worker's report) on the line below pytest's own output, so pytest's dots stay
as they are; a thread looks at the machine's slots every second (``loop.cpu_gate.slot_status``),
since a wait sends no report."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest

from pytest_autopilot.core.records import RunRecord
from pytest_autopilot.loop.cpu_gate import SlotStatus, slot_status

# ANSI: erase to the end of the line, erase the whole line, cursor one line up
_ERASE_REST, _ERASE_LINE, _UP = "\x1b[K", "\x1b[2K", "\x1b[1A"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


@dataclass
class Tally:
    """What the line shows, counted from the finished items and their run records."""

    total: int = 0
    done: int = 0
    successes: int = 0
    run_s: float = 0.0  # the finished runs' durations, summed over workers
    llm_s: float = 0.0  # their attempts' LLM latencies

    def add(self, record: RunRecord) -> None:
        self.successes += bool(record.strict_success)
        self.run_s += record.duration_s or 0.0
        self.llm_s += sum(a.latency_s or 0.0 for a in record.attempts)

    def line(self, elapsed_s: float) -> str:
        """``elapsed_s``: wall time since the first item started; the ETA is the remaining runs at the
        mean wall time per finished run, so parallel workers count."""
        eta = _duration(elapsed_s / self.done * max(self.total - self.done, 0)) if self.done else "-"
        wait = f"{100 * self.llm_s / self.run_s:.0f}%" if self.run_s > 0 else "-"
        return (f"autopilot: {self.done}/{self.total} runs | strict successes {self.successes} | "
                f"ETA {eta} | LLM wait {wait}")


def slots_text(status: SlotStatus) -> str:
    """The line's CPU-slot part: empty unless some of the session's steps wait for a slot."""
    if not status.waiting:
        return ""
    holders = (f"{status.held_by_others} held by another session on this machine" if status.held_by_others
               else f"all held by this session ({status.held})")
    return f" | waiting for a CPU slot: {status.waiting} ({holders})"


def wanted(mode: str, terminalreporter, verbosity: int, ci: bool) -> bool:
    """``auto``: on a terminal, outside CI and not under ``-q``; ``on`` forces it (but ``-q`` stays quiet)."""
    if terminalreporter is None or verbosity < 0 or mode == "off":
        return False
    return mode == "on" or (terminalreporter.isatty() and not ci)


class ProgressLine:
    """A plugin on the controller: counts items as their reports arrive (the session hands them
    over with their run records) and redraws the line."""

    def __init__(self, terminalreporter, owner: str = "", poll_s: float = 1.0, status=slot_status):
        self.tr = terminalreporter
        self.tally = Tally()
        self.started: float | None = None
        self.shown = False
        self.owner, self.poll_s, self.status = owner, poll_s, status  # owner: the session's run id
        self.slots = ""  # the CPU-slot part of the line, as last seen
        self._drawing = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    def pytest_collection_finish(self, session):  # without xdist; under xdist the session sets the total
        self.tally.total = len(session.items)

    def pytest_runtest_logstart(self, nodeid, location):
        if self.started is None:
            self.started = time.monotonic()
            self._watcher = threading.Thread(target=self._watch_slots, name="autopilot-slots", daemon=True)
            self._watcher.start()

    def _watch_slots(self) -> None:
        while not self._stop.wait(self.poll_s):
            seen = slots_text(self.status(self.owner))
            if seen != self.slots:
                self.slots = seen
                self.draw(self.text())

    def text(self) -> str:
        return self.tally.line(time.monotonic() - (self.started or time.monotonic())) + self.slots

    def add(self, report, record: RunRecord | None) -> None:
        """One report as the session read it (``record``: the run record it carried, if any)."""
        if record is not None:
            self.tally.add(record)
        if report.when in ("teardown", "???"):  # "???": xdist's report of a dead worker's item
            self.tally.done += 1
            self.draw(self.text())

    def draw(self, text: str | None) -> None:
        """Write ``text`` (None: nothing) on the line below pytest's, then put the cursor back where
        pytest left it; write_raw leaves pytest's idea of its current line untouched."""
        with self._drawing:  # the report hooks and the slot watcher
            tw = self.tr._tw
            column = tw.width_of_current_line
            line = text[: max(tw.fullwidth - 1, 10)] if text else ""
            back = f"\r\x1b[{column}C" if column else "\r"
            tw.write_raw(f"{_ERASE_REST}\n{_ERASE_LINE}{line}{_UP}{back}", flush=True)
            self.shown = text is not None

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self):
        """Before pytest's summary: the line goes, pytest's own output stays."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join()
        if self.shown:
            self.draw(None)
