"""Warm executor: Python attempts forked from a server that imported TensorFlow once.

``import tensorflow`` costs ~2.7-5 s and ~600 MB RSS, more than the rest of a typical MC attempt
(train/convert/quantise a small model: ~1.5 s). ``WarmPythonExecutor`` uses one *fork server*
per machine, session and preload, shared by all the session's xdist workers there through a
Unix socket in the sandbox base dir (``warm_shared.py``: one import and ~560 MB for the machine,
not per worker), started lazily by the first attempt that needs it; it imports the preload
modules once, and each attempt is a fresh process forked from it that confines itself exactly
like a cold run and then executes ``main.py`` in-process.

Design (the server code lives in ``_launcher_serve.py``, next to the launcher steps it reuses,
``_launcher_confine.py``; the harness's end of it in ``warm_server.py``, who shares it in
``warm_shared.py``)::

    harness ── Unix socket ──> fork server (python -E -s _launcher.py --serve; scrubbed env,
    (each      (one connection   own session, cwd/HOME = its own dir under the sandbox base dir,
    worker)     per worker)      no inherited fds; imported the preload, gc.freeze(), then only
                                 forks; serves one request at a time, answers reaps when due)
       │  "run" + 4 fds (stdin, stdout/stderr pipes, status pipe) via SCM_RIGHTS
       │                             └─ fork ─> child C: setsid, fds 0-3 from the harness, every
       │                                        other fd closed, cwd = work dir, env = the run's
       │                                        scrubbed env; then _launcher_confine.confine():
       │                                        pids+memory cgroup, net/mount/IPC/PID namespaces
       │                                        -> init (pid 1) -> target (pid 2): the allow-list
       │                                        view (pivot_root), private /proc, /tmp, /dev/shm;
       │                                        finish_setup(): rlimits, capabilities dropped,
       │                                        no_new_privs; status report; then run main.py
       └── supervisor.supervise(C): timeout, output caps, killpg(C) + cgroup kill, drain, then
           "reap" C through the server (it keeps C a zombie until then, so C's number and
           process group cannot be reused before the kill; a worker reaps only its own
           children) -> the same ExecResult as cold.

Same layout and the same code as a cold run (launcher -> init -> target), so ``ExecResult``
means the same; ``isolation["executor"] == "warm-fork"`` tells them apart.

Fork safety: measured on this machine (TF 2.21, keras 3, Python 3.11, 2 cores)
---------------------------------------------------------------------------------
* Threads. With the scrubbed environment (``OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=1``...)
  ``import tensorflow`` (which also imports keras and numpy) leaves the process with exactly one
  thread: ``threading.active_count() == 1`` and one entry in ``/proc/self/task``, also 1 s
  later. Without ``OPENBLAS_NUM_THREADS=1`` numpy's OpenBLAS pool adds a thread at import. The
  first TF *op* starts more (6 tasks: ``tf_Compute`` x2, ``tf_graph_runner``...): a child forked
  after that hung in its first op (killed after 60 s) -- the pools' threads do not exist in the
  child and a fork copies only the calling thread. So the server imports and never executes,
  checks ``/proc/self/task`` before every fork, refuses to fork when it is not 1, and the
  toolchain then falls back to cold runs (``isolation["executor"] == "cold"`` with
  ``warm_unavailable`` saying why).
* Work in the children. 30 successive children of one TF-importing process, each entering new
  net/mount/IPC/PID namespaces (all four unshares succeed: the child is single-threaded after the
  fork) and then training a Keras MLP, converting it with ``tf.lite.TFLiteConverter`` to full
  int8 with a representative dataset and running it with ``ai_edge_litert``: all exited 0 with
  byte-identical .tflite files and outputs; the server stayed at 1 thread. tests/executors/test_warm.py and
  the benchmark repeat this through the real executor (cold and warm .tflite sha256 are equal).
* State between attempts. Every child forks from the same clean server, never from a previous
  child: an attempt that calls ``keras.config.set_floatx("float16")``, sets ``tf.keras``/module
  globals or writes ``sys.modules`` is not seen by the next (tested). Import-time state derived
  from the *server's* environment is redone in the child: ``tempfile.tempdir`` (cached TMPDIR),
  keras's ``~/.keras`` (computed from HOME at import; the child recreates ``.keras/keras.json``
  in its own HOME as a cold import would) and numpy's legacy global RNG (reseeded; Python's
  ``random`` reseeds itself after fork).
* Namespaces. ``unshare(CLONE_NEWPID)`` only moves the caller's future children, so the child
  uses the launcher's fork-twice (C -> pid 1 -> target). ``unshare(CLONE_NEWNS)`` and
  ``CLONE_NEWUSER`` fail with EINVAL in a multi-threaded process; the forked child is always
  single-threaded, so they are done in the child, per attempt, never in the server.
* Shutdown. Full interpreter teardown in a child costs 0.5-1.6 s after an MC attempt (clearing
  3,300 modules touches, and so copies on write, the whole preloaded heap) and ~0.6 s after a
  trivial one. The child therefore does CPython's user-visible shutdown steps itself
  (``_launcher_child.shutdown``: join non-daemon threads, atexit handlers, release ``__main__``'s
  globals so unclosed files get flushed, gc, flush Python and C stdio, exit 120 on a failing
  stdout flush) and ``_exit``s: ~0.05 s. ``gc.freeze()`` in the server keeps the children's
  collections off the preloaded heap.
* Memory. The server does nothing per request but receive, fork and reply. Its RSS grew ~2.5 kB
  per attempt while it received into a 1 MB buffer (glibc heap fragmentation: tracemalloc showed
  no Python-level growth, and the same loop with only numpy preloaded did not grow); with a 64 kB
  buffer (``_launcher_protocol.MAX_REQUEST``, checked on both sides) 300 attempts moved it by 4 kB.
* Stdio. The child rebuilds ``sys.stdin/stdout/stderr`` for its fds 0-2 as interpreter startup
  does (the server's objects were made for its log file: ``io`` caches ``seekable()`` etc.).
  Name, encoding, errors, buffering and line buffering equal a cold run's (tested).

Measured (tests/bench/test_bench_warm.py, 2 cores shared with other jobs, load average 1.3-7):
server start 2.8-8.8 s once per session; MC attempt (load a Keras MLP, full-int8 conversion with
a representative dataset, write the .tflite) cold median 4.1-11.5 s vs warm 0.75-2.4 s: 4.8-6.6x
(5.5x on the quietest run); trivial attempt ~75 ms warm vs ~200 ms cold; server RSS 560 MB,
+28..+32 kB over 100 attempts. All 14 reference and known-bad solutions of cases/mc get
identical mc_tflite verdicts (every check and detail) and byte-identical .tflite files cold and
warm, 3.9-6.5 s cold vs 0.65-3.7 s warm each. The replay sweep at ``-n 16`` (123 runs,
tests/bench/test_bench_memory.py) peaked at 5.5 GB RSS for the controller, the 16 workers
(280-326 MB each) and the one shared server (547 MB), 4.4 GB PSS with every attempt.

Because forking after the import is safe under these conditions, the fallback design (a pool of
single-use pre-started interpreters that each imported TF themselves) was not needed.

Differences from a cold run, all deliberate or unavoidable
-----------------------------------------------------------
* The preload modules are already in ``sys.modules``, imported with the *server's* environment:
  environment variables that a preloaded module reads at import time (``TF_ENABLE_ONEDNN_OPTS``,
  ``KERAS_BACKEND``...) take their server values; ``env_extra`` reaches ``os.environ`` and
  ``getenv`` only. A ``keras.json`` laid out in the work dir is not read.
* TensorFlow's import-time log lines (oneDNN, CPU features) go to the server log, not the
  attempt's stderr. Tracebacks are CPython's, without executor frames.
* The hash seed is the server's, which is the fixed ``PYTHONHASHSEED`` every program gets
  (``limits.scrubbed_env``), as in a cold run.
* ``RLIMIT_AS`` counts the preload's address space (~1 GB virtual for TF) from the start, as
  it would for a cold script that imports TF; a script that imports nothing has less room.
* CPU time (``RLIMIT_CPU``, ``cpu_s_used``) excludes the import.
* Shutdown skips the module teardown: objects referenced only from *other* modules' globals are
  not finalised, C ``atexit`` handlers and C++ static destructors do not run (C stdio is
  flushed), and daemon threads run on until the exit instead of being frozen.
* A child's memory is a copy of the server's, which holds the preload and, in freed heap, earlier
  requests of any worker of the session: scrubbed environments and work-dir paths, never a secret.
* The server's own isolation is limited to what it needs to keep: it runs only trusted code (the
  stdlib and the preload imports), with a scrubbed environment (so neither it nor any child ever
  holds an API key), its own session, no inherited fds and ``-E -s``; its socket lies in the
  owner-only base dir, which no attempt's view shows, and it serves only its own uid
  (``SO_PEERCRED``). It keeps the capabilities
  and rlimits that the children need for their own, stricter confinement, stays in the host
  PID namespace (pids of its children must mean the same to the harness) and network namespace
  (``Limits.network`` is per attempt), and its children unshare per attempt.

Failures: if the server is gone (crash, OOM kill), the next attempt of any worker starts a new
one (under the lock, once) and runs normally; ``isolation["server_restarts"]`` counts the
session's restarts. If it dies during an attempt, the attempt keeps running (own session; its
status comes from pid 1 of its namespace); if the status cannot be known, the attempt is
reported as a harness error (``HarnessError``), never as the model's fault. ``close()`` (at
session end, through ``ctx.shared``) leaves: the server kills the children this process still
has, and exits when its last user has left. A worker that is killed (even with SIGKILL) leaves
the same way, by its socket closing; the session's controller then removes the session's warm
files, and ``sandbox.remove_leftovers`` the server's dir (tests/executors/test_warm_shared.py).
"""


from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from pytest_autopilot.core.errors import ToolchainMissing
from pytest_autopilot.core.records import ExecResult
from pytest_autopilot.core.util import lay_out
from pytest_autopilot.executors.fs_view import visible_executable
from pytest_autopilot.executors.local import SCRIPT_NAME
from pytest_autopilot.executors.sandbox import Limits, Sandbox, script_outside
from pytest_autopilot.executors.supervisor import stdin_file, supervise
from pytest_autopilot.executors.warm_server import REQUEST_S, ServerGone, WarmExecutorError
from pytest_autopilot.executors.warm_shared import SESSION_LINGER_S, SharedServer

__all__ = ["EXECUTOR", "WarmExecutorError", "WarmPythonExecutor", "warm_executor", "warm_pandas_executor"]

EXECUTOR = "warm-fork"
_INSTALL = {"tensorflow": "pip install tensorflow-cpu", "pandas": "pip install pandas",
            "ai_edge_litert": "pip install ai-edge-litert",
            "tflite_micro": "pip install tflite-micro", "keras": "pip install keras"}
_REAP_WAIT_S = 5.0


class _Unavailable(Exception):
    """Raised inside ``_run`` when a new server turned out unsafe to fork: the attempt runs cold."""


class WarmPythonExecutor:
    """An executor like ``local.python_executor``'s sandbox run; attempts fork from a warm server.

    ``preload``: modules the server imports once (default TensorFlow, which brings keras and
    numpy). Thread-safe; the server is the session's shared one (``warm_shared.py``).
    """

    name = "python"

    def __init__(self, sandbox: Sandbox, preload: Sequence[str] = ("tensorflow",), *, start_timeout_s: float = 300.0,
                 linger_s: float = 0.0):
        self.sandbox = sandbox
        self.linger_s = linger_s  # how long the server waits for a next user after the last one left
        self.preload = tuple(preload)
        self.start_timeout_s = start_timeout_s
        self.unavailable: str | None = None  # set when forking is unsafe: attempts then run cold
        self._server: SharedServer | None = None
        self._owner = os.getpid()
        self._lock = threading.Lock()
        self._closed = False

    # -- the executor interface -------------------------------------------------------------

    def execute(self, code: str, workdir: Path, files: dict[str, Path | bytes], limits) -> ExecResult:
        lay_out(workdir, files)
        (workdir / SCRIPT_NAME).write_text(code, encoding="utf-8")
        return self.run_python(SCRIPT_NAME, workdir, limits=limits)

    def run_python(self, script: Path | str, workdir: Path, *, args: Sequence[str] = (), limits: Limits | None = None,
                   env_extra: Mapping[str, str] | None = None, stdin: bytes | None = None) -> ExecResult:
        """Like ``Sandbox.run_python`` (``script`` relative to ``workdir`` or absolute)."""
        lim = limits or self.sandbox.limits
        args = [str(a) for a in args]
        for retry in (False, True):
            if self.unavailable is not None:
                return self._cold(script, workdir, args, lim, env_extra, stdin)
            try:
                return self._run(script, workdir, args, lim, env_extra, stdin, restarted_for_retry=retry)
            except _Unavailable:
                return self._cold(script, workdir, args, lim, env_extra, stdin)
            except ServerGone as exc:
                if retry:
                    raise WarmExecutorError(f"the warm fork server failed twice in a row: {exc}") from None
                with self._lock:
                    self._discard_server()  # died between attempts or while forking: start afresh, once
        raise AssertionError("unreachable")

    def server_info(self) -> dict:
        """The server's pid, RSS (kB), thread count and live children; starts it if needed."""
        with self._lock:
            try:
                return self._ensure_server()[0].request({"op": "info"})
            except _Unavailable:
                raise WarmExecutorError(f"no warm server: {self.unavailable}") from None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._discard_server()

    def __enter__(self) -> "WarmPythonExecutor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------------

    def _ensure_server(self) -> tuple[SharedServer, bool]:
        """The server and whether this call started it (the attempt then waited for its start)."""
        if self._closed:
            raise WarmExecutorError("the warm executor is closed")
        if os.getpid() != self._owner:  # we are a forked copy of the harness: never use its connection
            self._server, self._owner = None, os.getpid()
        if self._server is not None and not self._server.alive():
            self._discard_server()
        if self.unavailable is not None:
            raise _Unavailable()
        if self._server is not None:
            return self._server, False
        self._server = SharedServer(self.sandbox, self.preload, self.start_timeout_s)
        self._check_ready(self._server.ready)
        if self.unavailable is not None:
            raise _Unavailable()
        return self._server, self._server.started_here

    def _check_ready(self, ready: dict) -> None:
        missing = {name: err for name, err in ready["errors"].items()
                   if err.startswith(("ModuleNotFoundError", "ImportError"))}
        if missing:
            name = next(iter(missing))
            self._discard_server()
            raise ToolchainMissing(f"warm executor cannot import {name!r} ({missing[name]}); install it with: "
                                   f"{_INSTALL.get(name.split('.')[0], 'pip install ' + name.split('.')[0])}")
        if ready["errors"]:
            self._discard_server()
            raise WarmExecutorError(f"warm fork server failed to preload: {ready['errors']}")
        if ready["threads"] != 1:
            self._discard_server()
            self.unavailable = (f"the server had {ready['threads']} threads after importing {list(self.preload)}: "
                                "forking it could deadlock")

    def _discard_server(self) -> None:
        if self._server is not None:
            self._server.close(self.linger_s)
            self._server = None

    def _cold(self, script, workdir, args, lim, env_extra, stdin) -> ExecResult:
        result = self.sandbox.run([visible_executable(), "-s", str(script), *args], workdir, limits=lim,
                                  env_extra=env_extra, stdin=stdin, readonly=script_outside(script, workdir))
        result.isolation.update(executor="cold", warm_unavailable=self.unavailable)
        return result

    def _run(self, script, workdir, args, lim: Limits, env_extra, stdin, restarted_for_retry: bool) -> ExecResult:
        prep = self.sandbox.prepare(workdir, lim, env_extra, readonly=script_outside(script, workdir))
        ours: list[int] = []  # read ends we keep
        theirs: list[int] = []  # fds that go to the server (closed here once sent)
        try:
            if stdin is None:
                theirs.append(os.open(os.devnull, os.O_RDONLY))
            else:
                with stdin_file(stdin) as f:
                    theirs.append(os.dup(f.fileno()))
            for _ in range(3):  # stdout, stderr, status
                r, w = os.pipe()
                ours.append(r)
                theirs.append(w)
            request = {"op": "run", "cfg": prep.config, "env": prep.env, "script": str(script), "args": args}
            with self._lock:
                server, fresh = self._ensure_server()
                start = time.monotonic()  # the attempt's timeout does not include starting the server
                reply = server.request(request, theirs)
        except BaseException:
            for fd in ours:
                os.close(fd)
            if prep.cgroup:
                prep.cgroup.destroy()  # kills a child the server may have forked before dying
            raise
        finally:
            for fd in theirs:
                os.close(fd)
        if "error" in reply:
            for fd in ours:
                os.close(fd)
            if prep.cgroup:
                prep.cgroup.destroy()
            if reply["error"].startswith("refusing to fork"):
                self.unavailable = reply["error"]
                return self._cold(script, workdir, args, lim, env_extra, stdin)
            raise WarmExecutorError(f"warm fork server: {reply['error']}")

        pid, died = reply["pid"], []

        def reap(child: int) -> tuple[int | None, float | None]:
            with self._lock:
                try:
                    answer = server.request({"op": "reap", "pid": child, "wait_s": _REAP_WAIT_S},
                                            timeout=_REAP_WAIT_S + REQUEST_S)
                except ServerGone as exc:
                    died.append(str(exc))
                    return None, None
            return answer.get("status"), answer.get("cpu_s")

        stdout_r, stderr_r, status_r = ours
        try:
            outcome = supervise(pid, (stdout_r, stderr_r), status_r, prep.cgroup, lim, start, reap)
        finally:
            os.close(stdout_r)
            os.close(stderr_r)
        extra = {"executor": EXECUTOR, "preloaded": sorted(server.ready["preloaded"]), "server_pid": server.pid,
                 "server_restarts": server.restarts, "server_threads": server.ready["threads"]}
        if fresh:  # this attempt waited for the server to start (import the preload) first
            extra["server_start_s"] = server.start_s
        if restarted_for_retry:
            extra["server_restarted_for_this_attempt"] = True
        if died:
            extra["server_died_during_attempt"] = died[0]
            if outcome.report.get("exit_status") is None and not outcome.timed_out:
                raise WarmExecutorError(f"the warm fork server died during the attempt and its exit status is "
                                        f"unknown: {died[0]}")
        return Sandbox.exec_result(lim, prep, outcome, extra)


def warm_executor(ctx) -> WarmPythonExecutor:
    """``executor: warm-tensorflow``: the session's TensorFlow-preloaded fork server, started on first use."""
    return ctx.shared.get("warm-tensorflow", lambda: WarmPythonExecutor(ctx.sandbox, linger_s=SESSION_LINGER_S))


def warm_pandas_executor(ctx) -> WarmPythonExecutor:
    """``executor: warm-pandas``: the session's pandas-preloaded fork server (a DP attempt and each of its
    oracle's re-runs would otherwise pay the ~0.35 s import of pandas again), started on first use."""
    return ctx.shared.get("warm-pandas", lambda: WarmPythonExecutor(ctx.sandbox, ("pandas",),
                                                                    linger_s=SESSION_LINGER_S))
