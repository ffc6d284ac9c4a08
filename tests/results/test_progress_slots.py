"""The live line says when a session's steps wait for a CPU slot, and whether another session on the
machine holds the slots (issue 24: a run could wait 30 s or more in silence)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from pytest_autopilot.loop.cpu_gate import CpuGate, SlotStatus, slot_status
from pytest_autopilot.results.progress import ProgressLine, slots_text

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 60.0
# another session (owner "other") takes the only slot and holds it until the release file appears
OTHER_SESSION = """
import sys, time
from pathlib import Path
from pytest_autopilot.loop.cpu_gate import CpuGate
folder, release = sys.argv[1:]
with CpuGate(1, folder, owner="other").slot():
    print("held", flush=True)
    while not Path(release).exists():
        time.sleep(0.01)
"""


def _until(condition, what: str):
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"not within {DEADLINE_S}s: {what}")


def _other_session(folder: Path, release: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", OTHER_SESSION, str(folder), str(release)], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_slot_status_names_this_sessions_waiters_and_the_other_sessions_holders(tmp_path):
    folder, release = tmp_path / "slots", tmp_path / "release"
    other = _other_session(folder, release)
    assert slot_status("mine", folder) == SlotStatus(waiting=0, held=0, held_by_others=1)
    got = threading.Event()
    done = threading.Event()

    def mine():
        with CpuGate(1, folder, owner="mine").slot():
            got.set()
            done.wait(DEADLINE_S)

    worker = threading.Thread(target=mine)
    worker.start()
    _until(lambda: slot_status("mine", folder) == SlotStatus(waiting=1, held=0, held_by_others=1), "mine waits")
    assert not got.is_set()
    release.touch()
    other.wait(DEADLINE_S)
    assert got.wait(DEADLINE_S)
    assert slot_status("mine", folder) == SlotStatus(waiting=0, held=1, held_by_others=0)
    done.set()
    worker.join(DEADLINE_S)
    assert slot_status("mine", folder) == SlotStatus(0, 0, 0)


def test_a_killed_holder_counts_for_nothing(tmp_path):
    folder = tmp_path / "slots"
    other = _other_session(folder, tmp_path / "never")
    assert slot_status("mine", folder).held_by_others == 1
    other.send_signal(signal.SIGKILL)
    other.wait(DEADLINE_S)
    assert slot_status("mine", folder) == SlotStatus(0, 0, 0)  # its lock died with it; its marker is ignored
    with CpuGate(1, folder, owner="mine").slot():  # and the slot is free
        assert slot_status("mine", folder) == SlotStatus(0, 1, 0)


def test_the_text_says_who_holds_the_slots():
    assert slots_text(SlotStatus(0, 2, 0)) == ""
    assert slots_text(SlotStatus(3, 0, 2)) == " | waiting for a CPU slot: 3 (2 held by another session on this machine)"
    assert slots_text(SlotStatus(1, 2, 0)) == " | waiting for a CPU slot: 1 (all held by this session (2))"


class _Writer:
    """pytest's terminal writer as the line uses it; keeps what was written."""

    fullwidth, width_of_current_line = 200, 0

    def __init__(self):
        self.written: list[str] = []

    def write_raw(self, text: str, flush: bool = False) -> None:
        self.written.append(text)


def test_the_line_is_redrawn_while_runs_wait_without_any_report():
    writer = _Writer()
    seen = {"status": SlotStatus(0, 2, 0)}
    line = ProgressLine(type("TR", (), {"_tw": writer})(), owner="run-1", poll_s=0.05,
                        status=lambda owner: seen["status"] if owner == "run-1" else SlotStatus(0, 0, 0))
    line.tally.total = 4
    line.pytest_runtest_logstart("cases/x.yaml::x[m-r01]", None)
    seen["status"] = SlotStatus(waiting=2, held=0, held_by_others=2)
    _until(lambda: any("waiting for a CPU slot: 2 (2 held by another session" in w for w in writer.written),
           "the waiting part drawn")
    assert "autopilot: 0/4 runs" in writer.written[-1]
    seen["status"] = SlotStatus(0, 2, 0)
    _until(lambda: "waiting" not in writer.written[-1], "the waiting part gone once the slots are got")
    line.pytest_sessionfinish()
    assert not line._watcher.is_alive()
