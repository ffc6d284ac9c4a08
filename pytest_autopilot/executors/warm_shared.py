"""One warm fork server per machine, session and preload, shared by the session's processes.

A session's xdist workers on one machine all connect to the same server (one TensorFlow import,
~560 MB, instead of one per worker). The session is its controller's ``owner_tag``, handed to
its workers on this machine through xdist's ``workerinput`` and carried by the sandbox
(``Sandbox.session_tag``); a process outside a session (a sandbox without one) is its own. The workers share the sandbox base dir (the default one, from the same
``TMPDIR``); each attempt still gets its own work dir there. A session's files live in
``<base dir>/.warm/<hash of the session>/`` (owner-only, hidden from generated code like the base
dir): ``owner`` (the session's tag) and, per server (keyed by the base dir, interpreter, launcher
and preload), ``<key>.sock`` (the server listens there), ``<key>.lock`` (filelock) and
``<key>.json`` (the live server's pid, tag and directory, and how often it was restarted).

Everything that joins or leaves does so under the lock: the first process that finds no server
starts one, later ones connect; one that finds a dead (or hung) server kills what is left of it
and starts the next, counting the restart, so a crash mid-sweep costs one restart, not one per
worker. Leaving closes the connection, and the last one to leave waits for the server to exit
and removes its socket and state; a process that dies leaves by its socket closing (the server
kills that process's children and exits after the last user). A server that dies is never
cleaned up by its users' leaving: the next process to join restarts it and counts that. When
the session ends, its controller removes the session's folder (``remove_session_files``), and
those of sessions whose controller is gone.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from pytest_autopilot.core.util import file_lock
from pytest_autopilot.executors.cgroups import owner_gone, owner_tag
from pytest_autopilot.executors.sandbox import LAUNCHER, Sandbox, default_base_dir
from pytest_autopilot.executors.warm_server import REQUEST_S, Connection, ServerGone, ServerProcess, WarmExecutorError

FOLDER = ".warm"  # under the sandbox base dir
# a worker that finishes early must not stop the server that later workers of the session need (a
# restart is a TensorFlow import); the controller stops it at the session's end, or it ends by itself
SESSION_LINGER_S = 300.0
STOP_WAIT_S = 5.0  # a server whose last user left kills its children and exits at once
_SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes with the terminating NUL


def session_folder(base_dir: Path, session_tag: str | None = None) -> tuple[Path, str]:
    """The session's folder under ``base_dir`` and its tag (None: this process is a session of its own)."""
    tag = session_tag or owner_tag()
    return base_dir / FOLDER / hashlib.sha256(tag.encode()).hexdigest()[:8], tag


def server_key(sandbox: Sandbox, preload: Sequence[str]) -> str:
    """Which server of the session: the same for every process that asks for this preload here."""
    parts = [str(sandbox.base_dir), sys.executable, str(LAUNCHER), *preload]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def remove_session_files(base_dir: Path | None = None) -> None:
    """At the end of a session, in its controller (its workers have left): remove the session's
    folder, killing a server that is somehow still there, and the folders of sessions whose
    controller is gone once their servers are (default: the default base dir). The servers' own
    dirs go with ``sandbox.remove_leftovers``, which must run after this."""
    mine = owner_tag()
    try:
        folders = list(((base_dir or default_base_dir()) / FOLDER).iterdir())
    except OSError:
        return
    for folder in folders:
        try:
            tag = (folder / "owner").read_text()
        except OSError:
            continue  # being created, or not ours
        if tag != mine and not owner_gone(tag):
            continue
        servers = [state for state in map(_read_state, folder.glob("*.json")) if state and not owner_gone(state["tag"])]
        if servers and tag != mine:
            continue  # a dead session's workers may still be leaving: its servers stop with them
        for state in servers:
            _kill(state)
        for path in folder.iterdir():
            path.unlink(missing_ok=True)
        folder.rmdir()


def _read_state(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _kill(state: dict) -> None:
    """SIGKILL a server (its process group) unless it is gone, and wait a moment until it is."""
    if owner_gone(state["tag"]):
        return  # its pid may be another process's by now
    try:
        os.killpg(state["pid"], signal.SIGKILL)
    except OSError:
        return
    deadline = time.monotonic() + 2.0
    while not owner_gone(state["tag"]) and time.monotonic() < deadline:
        time.sleep(0.01)


class SharedServer:
    """This process's use of the session's server: its connection, and the process if started here.

    ``started_here`` is true when joining started the server (``start_s``: how long that took);
    ``restarts`` is how often the session has had to restart it after it died.
    """

    def __init__(self, sandbox: Sandbox, preload: Sequence[str], start_timeout_s: float):
        self.sandbox = sandbox
        folder, tag = session_folder(sandbox.base_dir, sandbox.session_tag)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not (folder / "owner").exists():
            (folder / "owner").write_text(tag)  # the same text from every writer
        key = server_key(sandbox, preload)
        self.socket_path, self.state_path = folder / f"{key}.sock", folder / f"{key}.json"
        self.lock_path = folder / f"{key}.lock"
        if len(str(self.socket_path)) > _SOCKET_PATH_MAX:
            raise WarmExecutorError(f"sandbox base dir {sandbox.base_dir} is too long for a Unix socket path; "
                                    "use a shorter one")
        self.process: ServerProcess | None = None
        self.start_s: float | None = None
        with file_lock(self.lock_path, timeout_s=start_timeout_s + REQUEST_S):
            try:
                self.conn = Connection(self.socket_path)
            except (OSError, ServerGone):
                self.conn = self._start(preload, start_timeout_s)
        self.pid, self.ready = self.conn.pid, self.conn.ready
        self.dir, self.restarts = Path(self.ready["dir"]), self.ready["restarts"]

    @property
    def started_here(self) -> bool:
        return self.process is not None

    def _start(self, preload: Sequence[str], start_timeout_s: float) -> Connection:
        """Under the lock, with no server answering: clear what a dead one left, start the next."""
        state = _read_state(self.state_path)
        # a server that stopped because its last user died removed its socket: only a crash leaves it
        crashed = state is not None and self.socket_path.exists()
        if state is not None:
            _kill(state)  # if alive, it is hung: it did not answer
            self._remove_dir(state["dir"])
        self.socket_path.unlink(missing_ok=True)
        restarts = (state or {}).get("restarts", 0) + crashed
        started = time.monotonic()
        self.process = ServerProcess(self.sandbox, preload, self.socket_path, restarts, start_timeout_s)
        try:
            conn = Connection(self.socket_path)
        except BaseException:
            self.process.kill()
            self._remove_dir(str(self.process.dir))
            raise
        self.start_s = round(time.monotonic() - started, 3)
        self.state_path.write_text(json.dumps({"pid": conn.pid, "tag": conn.tag, "dir": str(self.process.dir),
                                               "restarts": restarts}))
        return conn

    def _remove_dir(self, directory: str) -> None:
        try:
            self.sandbox.cleanup(Path(directory))
        except (OSError, ValueError):
            pass

    def alive(self) -> bool:
        if self.process is not None:
            self.process.proc.poll()  # our child: reaped here, so it never lingers as a zombie
        return self.conn.alive()

    def request(self, message: dict, fds: Sequence[int] = (), timeout: float = REQUEST_S) -> dict:
        return self.conn.request(message, fds, timeout)

    def close(self, linger_s: float = 0.0) -> None:
        """Leave; with ``linger_s`` the server waits that long for a next user after the last one
        left (the session's controller stops it at the end), else the last user waits for it to
        exit and removes its files."""
        with file_lock(self.lock_path):
            try:
                others = self.conn.request({"op": "bye", "linger_s": linger_s})["others"]
            except ServerGone:
                others = None  # died: the next process to join restarts it and counts that
            self.conn.close()
            if others != 0 or linger_s:
                return
            deadline = time.monotonic() + STOP_WAIT_S
            while self.conn.alive() and time.monotonic() < deadline:
                time.sleep(0.01)
                if self.process is not None:
                    self.process.proc.poll()
            if self.conn.alive():
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except OSError:
                    pass
            if self.process is not None:
                self.process.proc.wait()
            self._remove_dir(str(self.dir))
            self.state_path.unlink(missing_ok=True)
            self.socket_path.unlink(missing_ok=True)
