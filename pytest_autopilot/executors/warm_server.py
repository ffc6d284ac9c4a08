"""The harness's end of a warm fork server: starting the process (``_launcher.py --serve``, see
``_launcher_serve.py``), a connection to it, and the request/reply exchange.

A server is started with a scrubbed environment, its own session and directory under the
sandbox base dir, and no inherited fds but the write end of a pipe for its ready message; it
then listens on a ``SOCK_SEQPACKET`` Unix socket, to which every harness process that uses it
connects (``warm_shared.py`` says which server and when). Every request is one JSON message
(with fds for a run, via SCM_RIGHTS) and one JSON reply. A server that does not answer or is
gone raises ``ServerGone`` with how it died and the end of its log. A connection's close makes
the server kill that connection's children; after the last one it exits.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import time
import weakref
from collections.abc import Sequence
from pathlib import Path

from pytest_autopilot.core.errors import HarnessError
from pytest_autopilot.core.records import Category
from pytest_autopilot.executors.launcher._launcher_protocol import MAX_REQUEST
from pytest_autopilot.executors.cgroups import owner_gone, owner_tag
from pytest_autopilot.executors.fs_view import visible_executable
from pytest_autopilot.executors.limits import scrubbed_env
from pytest_autopilot.executors.sandbox import LAUNCHER, OWNERS, Sandbox

REQUEST_S = 30.0  # a request is a fork or a reap (<= 5 s): anything slower means a hung server


class WarmExecutorError(HarnessError):
    """The fork server failed in a way that says nothing about the program: a harness error
    (the repair loop records the attempt with that category and stops the run)."""

    def __init__(self, message: str):
        super().__init__(Category.HARNESS_ERROR, message)


class ServerGone(WarmExecutorError):
    """The server is gone or does not answer (a new one may be started)."""


def describe_death(pid: int, log: Path, proc: subprocess.Popen | None = None) -> str:
    """How server ``pid`` ended (its exit status only its starter knows) and the end of its log."""
    code = proc.poll() if proc is not None else None
    if proc is not None and code is not None:
        what = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
    else:
        what = "is gone" if owner_gone(owner_tag(pid)) else "still running (not answering)"
    try:
        tail = log.read_text(errors="replace")[-1500:].strip()
    except OSError:
        tail = ""
    return f"warm fork server (pid {pid}) {what}" + (f"; its log ends:\n{tail}" if tail else "")


class ServerProcess:
    """A server process this harness process started; ``ready`` is its ready message."""

    def __init__(self, sandbox: Sandbox, preload: Sequence[str], socket_path: Path, restarts: int,
                 start_timeout_s: float):
        self.dir = sandbox.new_workdir(prefix="warm-server-")
        (self.dir / ".tmp").mkdir()
        self.log = self.dir / "server.log"
        ready_r, ready_w = os.pipe()
        config = {"socket": str(socket_path), "preload": list(preload), "restarts": restarts, "ready_fd": ready_w}
        try:
            with open(self.log, "wb") as log:
                self.proc = subprocess.Popen(
                    [visible_executable(), "-s", str(LAUNCHER), "--serve", json.dumps(config)],
                    cwd=self.dir, env=scrubbed_env(self.dir), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    pass_fds=(ready_w,), start_new_session=True)
        finally:
            os.close(ready_w)
        self.pid = self.proc.pid
        try:
            self.ready = json.loads(_read_all(ready_r, start_timeout_s) or b"null")
        finally:
            os.close(ready_r)
        if self.ready is None:
            death = describe_death(self.pid, self.log, self.proc)
            self.kill()
            raise ServerGone(f"{death} (before it was ready)")
        # the server outlives its starter while others use it: leftovers go by its life, not ours
        (sandbox.base_dir / OWNERS / self.dir.name).write_text(owner_tag(self.pid))

    def kill(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.wait()


def _read_all(fd: int, timeout: float) -> bytes | None:
    """Everything written to ``fd`` until EOF, or None when nothing came before the timeout or EOF."""
    deadline, data = time.monotonic() + timeout, b""
    while select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return data or None
        data += chunk
    return None


class Connection:
    """One connection to a listening server; ``ready`` is the server's greeting."""

    def __init__(self, socket_path: Path, timeout: float = REQUEST_S):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._finalizer = weakref.finalize(self, self.sock.close)  # the server sees EOF either way
        self.pid, self.log = None, None
        try:
            self.sock.settimeout(timeout)
            self.sock.connect(str(socket_path))
            self.ready = self._receive(timeout)["ready"]
        except BaseException:
            self.close()
            raise
        self.pid, self.log = self.ready["pid"], Path(self.ready["dir"]) / "server.log"
        self.tag = owner_tag(self.pid)

    def alive(self) -> bool:
        return not owner_gone(self.tag)

    def death(self) -> str:
        if self.pid is None:
            return "warm fork server did not greet"
        return describe_death(self.pid, self.log)

    def _receive(self, timeout: float) -> dict:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 20)
        except OSError as exc:  # includes socket.timeout
            raise ServerGone(f"{self.death()} ({exc or type(exc).__name__})") from None
        if not data:
            raise ServerGone(self.death())
        return json.loads(data)

    def request(self, message: dict, fds: Sequence[int] = (), timeout: float = REQUEST_S) -> dict:
        data = json.dumps(message).encode()
        if len(data) > MAX_REQUEST:
            raise WarmExecutorError(f"request of {len(data)} bytes exceeds the fork server's {MAX_REQUEST}: "
                                    "too many or too long environment variables or paths")
        self.sock.settimeout(timeout)
        try:
            if fds:
                socket.send_fds(self.sock, [data], list(fds))
            else:
                self.sock.send(data)
        except OSError as exc:
            raise ServerGone(f"{self.death()} ({exc})") from None
        return self._receive(timeout)

    def close(self) -> None:
        self._finalizer()
