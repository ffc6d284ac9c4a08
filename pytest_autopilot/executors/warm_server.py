"""The harness's end of one warm fork server: the process (``_launcher.py --serve``, see
``_launcher_serve.py``), its control socket and its log, and the request/reply exchange.

A server is started with a scrubbed environment, its own session and directory under the
sandbox base dir, and no inherited fds but its end of a ``SOCK_SEQPACKET`` socketpair; every
request is one JSON message (with fds for a run, via SCM_RIGHTS) and one JSON reply. A server
that does not answer or is gone raises ``ServerGone`` with how it died and the end of its log.
Stopping it closes the socket: the server then kills any child it still has and exits.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import weakref
from collections.abc import Sequence
from pathlib import Path

from pytest_autopilot.core.errors import HarnessError
from pytest_autopilot.core.records import Category
from pytest_autopilot.executors._launcher_protocol import MAX_REQUEST
from pytest_autopilot.executors.fs_view import visible_executable
from pytest_autopilot.executors.limits import scrubbed_env
from pytest_autopilot.executors.sandbox import LAUNCHER, Sandbox

REQUEST_S = 30.0  # a request is a fork or a reap (<= 5 s): anything slower means a hung server


class WarmExecutorError(HarnessError):
    """The fork server failed in a way that says nothing about the program: a harness error
    (the repair loop records the attempt with that category and stops the run)."""

    def __init__(self, message: str):
        super().__init__(Category.HARNESS_ERROR, message)


class ServerGone(WarmExecutorError):
    """The server is gone or does not answer (a new one may be started)."""


def _stop_server(owner: int, proc: subprocess.Popen, sock: socket.socket, sandbox: Sandbox, directory: Path) -> None:
    sock.close()  # the server sees EOF, kills the children it still has and exits
    if os.getpid() != owner:  # a forked copy of the harness must not stop its parent's server
        return
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait()
    try:
        sandbox.cleanup(directory)
    except (OSError, ValueError):
        pass


class ForkServer:
    """One running server process and its control socket."""

    def __init__(self, sandbox: Sandbox, preload: Sequence[str], start_timeout_s: float):
        self.dir = sandbox.new_workdir(prefix="warm-server-")
        (self.dir / ".tmp").mkdir()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        config = {"sock_fd": theirs.fileno(), "preload": list(preload)}
        self.log = self.dir / "server.log"
        with theirs, open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [visible_executable(), "-E", "-s", str(LAUNCHER), "--serve", json.dumps(config)],
                cwd=self.dir, env=scrubbed_env(self.dir), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                pass_fds=(theirs.fileno(),), start_new_session=True)
        self.sock = ours
        self._finalizer = weakref.finalize(self, _stop_server, os.getpid(), self.proc, ours, sandbox, self.dir)
        try:
            self.ready = self._receive(start_timeout_s)["ready"]
        except BaseException:
            self.close()
            raise
        self.pid = self.ready["pid"]

    start_s: float | None = None  # how long starting it took (spawn + preload imports)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def death(self) -> str:
        code = self.proc.poll()
        what = "still running (not answering)" if code is None else \
            f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
        try:
            tail = self.log.read_text(errors="replace")[-1500:].strip()
        except OSError:
            tail = ""
        return f"warm fork server (pid {self.proc.pid}) {what}" + (f"; its log ends:\n{tail}" if tail else "")

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

