"""Supervising a started run, the part the cold sandbox and the warm executor share.

The run's top process leads its own session and process group. The harness reads its bounded
stdout/stderr until it exits or the wall-clock timeout passes; then, whatever happened (even
KeyboardInterrupt), it kills the process group and the run's cgroup, drains the pipes, collects
the exit status and reads the launcher's status lines. The run's pid must not be reaped before
that kill, so its number (= its process group) cannot be reused by an unrelated process.
"""

from __future__ import annotations

import json
import os
import resource
import selectors
import signal
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_autopilot.executors.cgroups import RunCgroup
from pytest_autopilot.executors.limits import Limits

_DRAIN_S = 1.0  # after the kill, how long to wait for the pipes to reach EOF
_REAP_S = 5.0  # how long to wait for the killed launcher's exit status


class _Capture:
    """Non-blocking reader of the stdout/stderr pipes that keeps at most ``cap`` bytes of each."""

    def __init__(self, pipes: Sequence[int], cap: int):
        self.cap, self.truncated = cap, False
        self.sel = selectors.DefaultSelector()
        self.bufs: dict[int, bytearray] = {}  # stdout first, then stderr
        for fd in pipes:
            os.set_blocking(fd, False)
            self.bufs[fd] = bytearray()
            self.sel.register(fd, selectors.EVENT_READ, "pipe")

    def add_exit_fd(self, fd: int) -> None:
        self.sel.register(fd, selectors.EVENT_READ, "exit")

    @property
    def open_pipes(self) -> int:
        return sum(1 for key in self.sel.get_map().values() if key.data == "pipe")

    def pump(self, timeout: float) -> bool:
        """One round of reading; True when the exit fd became readable."""
        exited = False
        for key, _ in self.sel.select(max(timeout, 0)):
            if key.data == "exit":
                exited = True
                continue
            try:
                chunk = os.read(key.fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                self.sel.unregister(key.fd)
                continue
            buf = self.bufs[key.fd]
            room = self.cap - len(buf)
            if len(chunk) > room:
                self.truncated = True
            buf += chunk[:max(room, 0)]
        return exited

    def texts(self) -> tuple[str, str]:
        out, err = self.bufs.values()
        return out.decode("utf-8", errors="replace"), err.decode("utf-8", errors="replace")

    def close(self) -> None:
        self.sel.close()


def proc_stats():
    """(pid, fields after the command name) of every process in /proc: state, ppid, pgrp, session, ..."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                yield int(entry), Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue


def _session_size(sid: int) -> int:
    """Number of live processes in session ``sid`` (as seen from our PID namespace)."""
    return sum(fields[3] == str(sid) and fields[0] != "Z" for _, fields in proc_stats())


def reap_child(pid: int) -> tuple[int | None, resource.struct_rusage | None]:
    """Our child's raw wait status and rusage, waiting up to a few seconds; (None, None) if unknown."""
    deadline = time.monotonic() + _REAP_S
    while True:
        try:
            done, status, usage = os.wait4(pid, os.WNOHANG)
        except ChildProcessError:
            return None, None
        if done:
            return status, usage
        if time.monotonic() > deadline:  # unkillable (e.g. stuck in the kernel): give up, status unknown
            return None, None
        time.sleep(0.005)


def _read_status(fd: int) -> dict:
    """The launcher's JSON lines: {"setup": report} and, with a PID namespace, {"exit_status": n}."""
    os.set_blocking(fd, False)
    data = b""
    try:
        while chunk := os.read(fd, 65536):
            data += chunk
    except BlockingIOError:
        pass
    finally:
        os.close(fd)
    merged: dict = {}
    for line in data.decode("utf-8", errors="replace").splitlines():
        try:
            merged.update(json.loads(line))
        except (json.JSONDecodeError, TypeError, ValueError):
            pass
    return merged


def stdin_file(data: bytes):
    """A temporary file holding ``data``, at its start: a run's stdin (a file, not a pipe:
    writing it can never block the harness)."""
    f = tempfile.TemporaryFile()
    f.write(data)
    f.seek(0)
    return f


@dataclass
class Outcome:
    """What supervising a run found out, before it becomes an ``ExecResult``."""

    timed_out: bool
    duration: float
    limit_events: int
    oom_kills: int  # members the memory cgroup's OOM killer took
    status: int | None  # raw wait status of the supervised process, None if unknown
    cpu_used: float | None
    stdout: str
    stderr: str
    truncated: bool
    report: dict  # the launcher's status lines


def _gone(pid: int) -> bool:
    """Has ``pid`` exited (without reaping it)? Works for processes that are not our children."""
    try:
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return True
    except ChildProcessError:
        pass  # not our child: ask /proc
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def _wait_exit(pid: int, capture: _Capture, deadline: float) -> bool:
    """Read output until process ``pid`` exits (False) or the deadline passes (True).

    ``pid`` need not be our child (a warm run is a child of the fork server), but it must not be
    reaped before the kill that follows, so that its number (= its process group) is not reused.
    """
    try:
        pidfd = os.pidfd_open(pid)  # readable once the process has exited
    except (AttributeError, OSError):
        pidfd = None
    try:
        if pidfd is not None:
            capture.add_exit_fd(pidfd)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            step = remaining if pidfd is not None else min(remaining, 0.05)
            if capture.pump(step) or (pidfd is None and _gone(pid)):
                return False
    finally:
        if pidfd is not None:
            capture.sel.unregister(pidfd)
            os.close(pidfd)


def supervise(pid: int, pipes: Sequence[int], status_r: int, cgroup: RunCgroup | None, lim: Limits, start: float,
              reap: Callable[[int], tuple[int | None, float | None]]) -> Outcome:
    """Supervise a started run, shared by the cold sandbox and the warm executor.

    ``pid`` is the run's top process, leader of its own session and process group. Capture
    ``pipes`` (stdout, stderr) until it exits or the timeout passes; then, whatever happened, kill
    its process group and cgroup, drain the pipes, ``reap(pid)`` -> (raw wait status, cpu
    seconds), and read the launcher's status lines from ``status_r`` (closed here).
    """
    capture = _Capture(pipes, lim.output_bytes)
    timed_out, limit_events, oom_kills, status, cpu_used = False, 0, 0, None, None
    try:
        timed_out = _wait_exit(pid, capture, start + lim.timeout_s)
        duration = time.monotonic() - start
        # Without a cgroup there is no event counter: a session full to the limit is the tell.
        limit_events = cgroup.limit_events() if cgroup and cgroup.pids else \
            int(_session_size(pid) >= lim.processes)
    finally:
        # Whatever happened (even KeyboardInterrupt), nothing of the run may survive it.
        if cgroup:
            cgroup.freeze_forks()
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        if cgroup:
            oom_kills = cgroup.oom_kills()  # before it is gone; kills after the exit count too
            cgroup.destroy()
        drain_until = time.monotonic() + _DRAIN_S
        while capture.open_pipes and time.monotonic() < drain_until:
            capture.pump(drain_until - time.monotonic())
        try:
            status, cpu_used = reap(pid)
        finally:
            capture.close()
            report = _read_status(status_r)
    stdout, stderr = capture.texts()
    return Outcome(timed_out, duration, limit_events, oom_kills, status, cpu_used, stdout, stderr, capture.truncated,
                   report)
