"""The CPU gate: a machine-wide semaphore for the CPU-heavy part of an attempt (toolchain builds,
TensorFlow conversions, sandboxed runs, oracles and their re-runs), so that many xdist workers,
most of them waiting on an LLM, never run more CPU-heavy steps at once than there are slots.

A slot is one of N lock files in the user cache folder (``core.util.cache_dir("cpu-slots")``),
shared by every worker and session of the machine. A worker takes any free slot, polling with a
jittered backoff while none is. The locks are the kernel's (flock), so a holder that crashes or
is killed frees its slot with its process. A session asking for fewer slots uses only the first
N files: each session keeps its own bound, and they all share the machine.

Beside the locks, who waits and who holds is written down for the live progress line
(``slot_status``): a waiter keeps a marker in ``waiting/`` until it gets a slot, a holder a
``slot-N.holder`` file until it lets go, each naming its session (``owner``, the run id) and pid;
a marker whose process is gone is ignored, so a killed worker leaves nothing that counts.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from pytest_autopilot.core.errors import HarnessError
from pytest_autopilot.core.records import Category
from pytest_autopilot.core.util import cache_dir

SLOTS_KIND = "cpu-slots"
FIRST_POLL_S = 0.01
MAX_POLL_S = 0.2  # a freed slot is taken within this; CPU-heavy steps last seconds


def usable_cores() -> int:
    """The cores this process may run on (its affinity, which a container or taskset narrows)."""
    return len(os.sched_getaffinity(0))


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class SlotStatus:
    """What the slots of a machine are doing, seen from session ``owner``."""

    waiting: int  # this session's steps waiting for a slot
    held: int  # slots this session holds
    held_by_others: int  # slots other sessions (other pytest runs on this machine) hold


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def _markers(paths) -> list[dict]:
    found = []
    for path in paths:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):  # being written or removed right now
            continue
        if isinstance(data, dict) and isinstance(data.get("pid"), int) and _alive(data["pid"]):
            found.append(data)
        else:  # a killed process's marker (or a foreign file): it counts for nothing
            path.unlink(missing_ok=True)
    return found


def slot_status(owner: str, folder: Path | None = None) -> SlotStatus:
    """Who waits for and who holds the slots in ``folder`` (default: the machine's), by session."""
    folder = Path(folder) if folder is not None else cache_dir(SLOTS_KIND)
    waiting = _markers((folder / "waiting").glob("*.json")) if (folder / "waiting").is_dir() else []
    holders = _markers(folder.glob("slot-*.holder"))
    return SlotStatus(sum(w.get("owner") == owner for w in waiting), sum(h.get("owner") == owner for h in holders),
                      sum(h.get("owner") != owner for h in holders))


@dataclass(frozen=True)
class SlotHold:
    index: int  # which slot file
    wait_s: float  # how long it took to get it
    started_at: str  # when it was got (UTC, ISO 8601)


class CpuGate:
    """``slots`` CPU-heavy steps at once on this machine (None: one per usable core)."""

    def __init__(self, slots: int | None = None, folder: Path | None = None, rng: random.Random | None = None,
                 owner: str = ""):
        self.slots = usable_cores() if slots is None else slots
        if self.slots < 1:
            raise HarnessError(Category.HARNESS_ERROR, f"--autopilot-cpu-slots {slots}: expected at least 1 "
                               f"(default: the {usable_cores()} cores this process may use)")
        self.folder = Path(folder) if folder is not None else cache_dir(SLOTS_KIND)
        self._rng = rng or random.Random()
        self.owner = owner  # the session (run id), for slot_status

    @contextmanager
    def slot(self) -> Iterator[SlotHold]:
        """Hold a slot for the block; released when it ends, however it ends."""
        asked = time.monotonic()
        lock, index = self._take()
        holder = self.folder / f"slot-{index}.holder"
        holder.write_text(self._marker())
        try:
            yield SlotHold(index, round(time.monotonic() - asked, 4), utc_now())
        finally:
            holder.unlink(missing_ok=True)  # before the release: the next holder writes its own
            lock.release()

    def _marker(self) -> str:
        return json.dumps({"owner": self.owner, "pid": os.getpid()})

    def _take(self):
        from filelock import FileLock, Timeout

        self.folder.mkdir(parents=True, exist_ok=True)
        poll_s = FIRST_POLL_S
        waiting: Path | None = None  # this wait's marker, from the first round that found every slot taken
        try:
            while True:
                first = self._rng.randrange(self.slots)  # spread the workers over the slots
                for offset in range(self.slots):
                    index = (first + offset) % self.slots
                    # preserve_lock_file: always a kernel lock (never filelock's soft fallback), which dies with its holder
                    lock = FileLock(self.folder / f"slot-{index}.lock", preserve_lock_file=True)
                    try:
                        lock.acquire(blocking=False)
                    except Timeout:
                        continue
                    return lock, index
                if waiting is None:
                    waiting = self._mark_waiting()
                time.sleep(self._rng.uniform(poll_s / 2, poll_s))  # jittered: waiters do not poll in lockstep
                poll_s = min(poll_s * 2, MAX_POLL_S)
        finally:
            if waiting is not None:
                waiting.unlink(missing_ok=True)

    def _mark_waiting(self) -> Path:
        folder = self.folder / "waiting"
        folder.mkdir(exist_ok=True)
        path = folder / f"{os.getpid()}-{threading.get_ident()}.json"
        path.write_text(self._marker())
        return path
