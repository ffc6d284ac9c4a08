"""The CPU gate: a machine-wide semaphore for the CPU-heavy part of an attempt (toolchain builds,
TensorFlow conversions, sandboxed runs, oracles and their re-runs), so that many xdist workers,
most of them waiting on an LLM, never run more CPU-heavy steps at once than there are slots.

A slot is one of N lock files in the user cache folder (``core.util.cache_dir("cpu-slots")``),
shared by every worker and session of the machine. A worker takes any free slot, polling with a
jittered backoff while none is. The locks are the kernel's (flock), so a holder that crashes or
is killed frees its slot with its process. A session asking for fewer slots uses only the first
N files: each session keeps its own bound, and they all share the machine.
"""

from __future__ import annotations

import os
import random
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
class SlotHold:
    index: int  # which slot file
    wait_s: float  # how long it took to get it
    started_at: str  # when it was got (UTC, ISO 8601)


class CpuGate:
    """``slots`` CPU-heavy steps at once on this machine (None: one per usable core)."""

    def __init__(self, slots: int | None = None, folder: Path | None = None, rng: random.Random | None = None):
        self.slots = usable_cores() if slots is None else slots
        if self.slots < 1:
            raise HarnessError(Category.HARNESS_ERROR, f"--autopilot-cpu-slots {slots}: expected at least 1 "
                               f"(default: the {usable_cores()} cores this process may use)")
        self.folder = Path(folder) if folder is not None else cache_dir(SLOTS_KIND)
        self._rng = rng or random.Random()

    @contextmanager
    def slot(self) -> Iterator[SlotHold]:
        """Hold a slot for the block; released when it ends, however it ends."""
        asked = time.monotonic()
        lock, index = self._take()
        try:
            yield SlotHold(index, round(time.monotonic() - asked, 4), utc_now())
        finally:
            lock.release()

    def _take(self):
        from filelock import FileLock, Timeout

        self.folder.mkdir(parents=True, exist_ok=True)
        poll_s = FIRST_POLL_S
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
            time.sleep(self._rng.uniform(poll_s / 2, poll_s))  # jittered: waiters do not poll in lockstep
            poll_s = min(poll_s * 2, MAX_POLL_S)
