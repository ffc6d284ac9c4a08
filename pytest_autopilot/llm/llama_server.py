"""One llama.cpp server per machine and session for ``local/`` models (llama-cpp-python's
OpenAI-compatible server), shared by every xdist worker.

The server's address lives in a state file in the run's folder; whoever needs it first (the
controller, normally, before any worker starts) starts it under a file lock, and a process
that finds it dead (it crashed mid-run) starts a new one. The server is in its own process
group and dies with the process that started it (``PR_SET_PDEATHSIG``), so a killed session
leaves nothing behind; at session end the controller stops it and removes the state file.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from pytest_autopilot.core.errors import HarnessError
from pytest_autopilot.core.records import Category
from pytest_autopilot.core.util import die_with_parent, file_lock

INSTALL_HINT = 'pip install "pytest-autopilot[local]"  # builds llama.cpp from source: about 20 min on 2 cores'
START_TIMEOUT_S = 300.0  # loading a 1.5B model from a cold page cache on a busy machine
STOP_WAIT_S = 10.0
LOG_TAIL = 600


class LocalServerError(HarnessError):
    def __init__(self, message: str):
        super().__init__(Category.LLM_API_ERROR, message)


def _own_group_dying_with_parent() -> None:
    """In the child: a new process group (killed as one), SIGKILLed when its starter dies."""
    os.setsid()
    die_with_parent(signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def answers(url: str, timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/models", timeout=timeout_s) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError, ValueError):
        return False


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (a server that died, not yet reaped by its starter)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no procfs: existence is all there is to know
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class LlamaServer:
    """The session's server for one local model; ``url()`` starts it when it is not running."""

    def __init__(self, model, state_dir: Path, *, n_ctx: int, n_threads: int | None = None, port: int = 0):
        self.model = model  # llm.local_models.LocalModel
        self.state_dir = Path(state_dir)
        self.n_ctx = n_ctx
        self.n_threads = n_threads or os.cpu_count() or 1
        self.port = port
        self.started: list[int] = []  # pids this process started

    @property
    def _state(self) -> Path:
        return self.state_dir / f"llama-{self.model.alias}.json"

    @property
    def log_path(self) -> Path:
        return self.state_dir / f"llama-{self.model.alias}.log"

    def _read_state(self) -> dict | None:
        try:
            return json.loads(self._state.read_text())
        except (OSError, ValueError):
            return None

    def url(self) -> str:
        """The running server's ``/v1`` URL, starting (or restarting) it if needed."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with file_lock(self._state.with_suffix(".lock"), timeout_s=START_TIMEOUT_S + 60):
            state = self._read_state()
            # only a dead server is restarted: a live one answers late while it generates for another worker
            # (it serves one request at a time), and killing it then failed that worker's request
            if state and alive(state["pid"]):
                return state["url"]
            if state:
                _kill_group(state["pid"])
            return self._start()

    def _start(self) -> str:
        try:
            import llama_cpp.server  # noqa: F401  (only its presence: the server runs in a child)
        except ImportError:
            raise LocalServerError(f"local models need llama-cpp-python's server: {INSTALL_HINT}") from None
        port = self.port or free_port()
        if self.port and port_in_use(port):
            raise LocalServerError(f"port {port} for the local model server is in use; free it or set another "
                                   "(autopilot_local_port, 0 = any free port)")
        url = f"http://127.0.0.1:{port}/v1"
        argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model.path),
                "--model_alias", self.model.alias, "--host", "127.0.0.1", "--port", str(port),
                "--n_ctx", str(self.n_ctx), "--n_threads", str(self.n_threads),
                "--n_threads_batch", str(self.n_threads), "--verbose", "False"]
        log = open(self.log_path, "ab")
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    preexec_fn=_own_group_dying_with_parent, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        finally:
            log.close()
        self.started.append(proc.pid)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise LocalServerError(f"the local model server exited with {proc.returncode} while starting: "
                                       f"{self._log_tail()} (log: {self.log_path})")
            if answers(url, timeout_s=1.0):
                self._state.write_text(json.dumps({"pid": proc.pid, "url": url, "model": str(self.model.path),
                                                   "sha256": self.model.sha256, "n_ctx": self.n_ctx}))
                return url
            time.sleep(0.25)
        _kill_group(proc.pid)
        raise LocalServerError(f"the local model server did not answer within {START_TIMEOUT_S:.0f} s (log: {self.log_path})")

    def _log_tail(self) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "no log"
        return " ".join(text[-LOG_TAIL:].split())

    def close(self) -> None:
        """Stop the servers this process started (a worker's part at its end)."""
        for pid in self.started:
            _kill_group(pid)
        self.started.clear()

    def stop(self) -> None:
        """Stop the server whoever started it, and forget its address (the controller, at session end)."""
        state = self._read_state()
        self.close()
        if state:
            _kill_group(state["pid"])
        self._state.unlink(missing_ok=True)


def _kill_group(pid: int) -> None:
    """SIGTERM the server's process group, then SIGKILL what is left after a grace period."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + STOP_WAIT_S
        while time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return
            except ChildProcessError:  # not our child: poll for its disappearance
                if not alive(pid):
                    return
            time.sleep(0.05)
