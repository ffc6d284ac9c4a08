"""``RemoteExecutor``: one attempt of generated code on an SSH target.

Per attempt, :class:`RemoteExecutor` (``execute(code, workdir, files, limits)``, the same
interface as the local executors) does:

1. ``mktemp -d <workdir>/autopilot-XXXXXXXXXX`` on the target;
2. SFTP upload of ``main.py`` and the case's input files;
3. the program under a small Python wrapper that puts it in a new session (its own process
   group), applies rlimits (CPU, address space, file size, no core), gives it a clean
   environment carrying a per-attempt marker, and records its wait status; on a target that is
   this machine (the loopback board) the wrapper runs it through the local sandbox's launcher
   and view instead (``view.py``);
4. the wall-clock timeout enforced here: on expiry every process of the attempt is killed on
   the target -- its session, anything carrying the marker, anything whose cwd is inside the
   attempt dir -- and the kill is verified (nothing left, or a :class:`RemoteError`);
5. download of every file the program wrote (inputs it left unchanged stay behind), into the
   local work dir the oracle reads;
6. the same kill sweep (background processes the program left) and ``rm -rf`` of the dir.

A hung program is the model's failure: an ``ExecResult`` with ``timed_out=True``. A target
left dirty, or a connection dropped mid-run, is a :class:`RemoteError` (a harness error).
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import stat
import time
from pathlib import Path
from typing import Any

from pytest_autopilot.core.records import ExecResult
from pytest_autopilot.core.util import lay_out, redact
from pytest_autopilot.executors.limits import signal_limit, stderr_limit
from pytest_autopilot.executors.local import SCRIPT_NAME
from pytest_autopilot.executors.ssh.connection import COMMAND_TIMEOUT_S, SSHConnection, drain
from pytest_autopilot.executors.ssh.remote_scripts import SWEEP, WRAPPER, remote_env, remote_rlimits
from pytest_autopilot.executors.ssh.target import RemoteError, RemoteTarget
from pytest_autopilot.executors.ssh.view import REMOTE_ISOLATION, WORK_DIR, LocalView

KILL_WAIT_S = 5.0  # how long the remote kill sweep may take to see nothing left
MAX_DOWNLOAD_FILES = 1000
STATUS_DIR = ".autopilot"  # on the target, inside the attempt dir: the wrapper's status files


class RemoteExecutor:
    """Runs a Python program on an SSH target; outputs come back into the local work dir."""

    name = "ssh"

    def __init__(self, target: RemoteTarget, sandbox, connection: SSHConnection | None = None):
        self.target = target
        self.sandbox = sandbox  # local work dirs (inputs mirrored, outputs downloaded) for the oracles
        self.connection = connection or SSHConnection(target)

    def close(self) -> None:
        self.connection.close()

    def execute(self, code: str, workdir: Path, files: dict[str, Path | bytes], limits) -> ExecResult:
        conn, t = self.connection, self.target
        phases: dict[str, float] = {}
        clock = time.monotonic()
        reconnects_before = conn.connects
        conn.ensure()
        phases["connect_s"] = time.monotonic() - clock
        lay_out(workdir, files)  # the local mirror: the oracle sees what the program saw
        (workdir / SCRIPT_NAME).write_text(code, encoding="utf-8")

        clock = time.monotonic()
        remote_dir = self._mktemp()
        workspace = f"{remote_dir}/{WORK_DIR}" if t.local_view else remote_dir  # what the program sees
        marker = f"AUTOPILOT_ATTEMPT={secrets.token_hex(12)}"
        sweep_cfg = {"dir": remote_dir, "marker": marker, "sid": None, "wait_s": KILL_WAIT_S}
        try:
            uploaded = self._upload(workspace, workdir, [SCRIPT_NAME, *files], mkdir=workspace != remote_dir)
            phases["upload_s"] = time.monotonic() - clock
            result = self._run(remote_dir, workspace, marker, limits, sweep_cfg, phases)
            clock = time.monotonic()
            downloaded, skipped = self._download(workspace, workdir, uploaded, limits, result)
            phases["download_s"] = time.monotonic() - clock
        except BaseException:
            self._cleanup_after_failure(sweep_cfg)
            raise
        clock = time.monotonic()
        sweep = self._sweep(sweep_cfg, remove=True)
        phases["cleanup_s"] = time.monotonic() - clock
        if sweep["left"]:
            raise RemoteError("kill_failed", t.label, f"{sweep['left']} process(es) of the attempt survived SIGKILL "
                              f"for {KILL_WAIT_S:g} s; the target needs attention")
        result.isolation.update({
            "downloaded": downloaded, "download_skipped": skipped,
            "leftover_killed": sweep["killed"],  # background processes the program left behind
            "remote_dir_removed": bool(sweep["removed"]),
            "reconnected": conn.connects > reconnects_before and reconnects_before > 0,
            "phases_s": {k: round(v, 4) for k, v in phases.items()},
        })
        return result

    # -- steps
    def _mktemp(self) -> str:
        base = self.target.workdir.rstrip("/") or "/"
        status, out, err = self.connection.run(f"mktemp -d {shlex.quote(base + '/autopilot-XXXXXXXXXX')}")
        path = out.strip()
        if status != 0 or not path.startswith(base.rstrip("/") + "/autopilot-"):
            raise RemoteError("remote_command", self.target.label,
                              f"mktemp -d in {base} failed (exit {status}): {redact(err.strip())[:200]}")
        return path

    def _upload(self, remote_dir: str, workdir: Path, names: list[str], mkdir: bool) -> dict[str, tuple[int, int]]:
        sftp = self.connection.sftp()
        made: set[str] = set()
        uploaded: dict[str, tuple[int, int]] = {}
        try:
            if mkdir:
                sftp.mkdir(remote_dir)
            for rel in names:
                parts = Path(rel).parts
                for i in range(1, len(parts)):
                    sub = "/".join(parts[:i])
                    if sub not in made:
                        sftp.mkdir(f"{remote_dir}/{sub}")
                        made.add(sub)
                attrs = sftp.put(str(workdir / rel), f"{remote_dir}/{'/'.join(parts)}")
                uploaded["/".join(parts)] = (attrs.st_size, attrs.st_mtime)
        except RemoteError:
            raise
        except Exception as exc:
            raise self.connection.failure("upload failed", exc) from None
        return uploaded

    def _run(self, remote_dir: str, workspace: str, marker: str, limits, sweep_cfg: dict, phases: dict) -> ExecResult:
        t = self.target
        view = LocalView(self.sandbox, t, workspace, limits, marker) if t.local_view else None
        try:
            return self._supervise(remote_dir, workspace, marker, limits, sweep_cfg, phases, view)
        finally:
            if view is not None:
                view.release()

    def _supervise(self, remote_dir: str, workspace: str, marker: str, limits, sweep_cfg: dict, phases: dict,
                   view: LocalView | None) -> ExecResult:
        conn, t = self.connection, self.target
        status_dir = f"{remote_dir}/{STATUS_DIR}"  # outside the workspace with a view: the program cannot touch it
        if view is not None:
            config = view.wrapper_config(status_dir)
        else:
            config = {"rlimits": remote_rlimits(limits), "env": remote_env(remote_dir, marker, t.python),
                      "script": SCRIPT_NAME, "status_dir": status_dir}
        command = f"cd {shlex.quote(workspace)} && exec {shlex.quote(t.python)} -S -c {shlex.quote(WRAPPER)} " \
                  f"{shlex.quote(json.dumps(config))} </dev/null"
        try:
            chan = conn.transport.open_session(timeout=t.connect_timeout_s)
            start = time.monotonic()
            chan.exec_command(command)
        except Exception as exc:
            raise conn.failure("could not start the program", exc) from None
        out, err = drain(chan, start + limits.timeout_s, limits.output_bytes, dropped=lambda: not conn.alive)
        duration = time.monotonic() - start
        phases["run_s"] = duration
        isolation: dict[str, Any] = {
            "executor": "ssh", "host": t.address, "target": t.name, "remote_dir": remote_dir,
            "timeout_s": limits.timeout_s,
            "rlimits": {"cpu_s": limits.cpu_s, "memory_mb": limits.memory_mb, "file_size_mb": limits.file_size_mb,
                        "core": 0},
            "own_session": True, "env_keys": sorted(config["env"]), **REMOTE_ISOLATION,
            "edgetpu": t.edgetpu,
        }
        if not conn.alive:
            raise RemoteError("dropped", t.label, f"the SSH connection was lost while the program ran "
                              f"(after {duration:.1f} s)")
        timed_out = not chan.exit_status_ready()
        returncode = None if timed_out else chan.recv_exit_status()
        chan.close()
        if view is not None:
            view.release()  # before the sweep: what is left in the cgroup dies at once
        sweep_cfg["sid"] = self._read_sid(status_dir)
        if timed_out:
            sweep = self._sweep(sweep_cfg)
            isolation.update(timeout_killed=sweep["killed"], left_running=sweep["left"],
                             kill_verified=sweep["left"] == 0)
            if sweep["left"]:
                raise RemoteError("kill_failed", t.label, f"the program timed out after {limits.timeout_s:g} s and "
                                  f"{sweep['left']} of its process(es) survived SIGKILL")
        status = self._read_status(status_dir) if not timed_out else None
        sig = None
        if timed_out:
            sig = signal.SIGKILL
        elif returncode is not None and returncode >= 128 and status is not None \
                and os.WIFSIGNALED(status["status"]) and 128 + os.WTERMSIG(status["status"]) == returncode:
            sig = os.WTERMSIG(status["status"])
            returncode = -sig
        if status is not None:
            isolation["cpu_s_used"] = round(status.get("cpu_s", 0.0), 3)
            isolation["remote_python"] = status.get("python")
            if view is None:  # with a view the launcher sets them: its report says what it set
                isolation["rlimits_applied"] = status.get("rlimits", {})
        stdout, stderr = (b.decode("utf-8", "replace") for b, _ in (out, err))
        if view is not None:
            isolation.update(view.isolation(self._read_json(f"{status_dir}/setup") or {}, isolation.get("cpu_s_used")))
            hit = view.limit_hit(sig, returncode, timed_out, stderr, isolation)
        else:
            hit = _limit_hit(limits, sig, returncode, timed_out, stderr, isolation.get("cpu_s_used"))
        return ExecResult(returncode=returncode, stdout=stdout, stderr=stderr, duration_s=round(duration, 3),
                          timed_out=timed_out, signal=sig, limit_hit=hit,
                          output_truncated=out[1] or err[1], isolation=isolation)

    def _read_small(self, path: str, cap: int = 4096) -> bytes | None:
        try:
            with self.connection.sftp().open(path, "rb") as f:
                return f.read(cap)
        except RemoteError:
            raise
        except Exception:
            if not self.connection.alive:
                raise self.connection.failure(f"reading {path.rsplit('/', 1)[-1]}") from None
            return None

    def _read_json(self, path: str) -> dict | None:
        data = self._read_small(path, 1 << 16)  # a launcher's setup report lists paths: more than 4 kB
        try:
            value = json.loads(data) if data else None
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def _read_sid(self, status_dir: str) -> int | None:
        data = self._read_small(f"{status_dir}/sid")
        try:
            return int(data) if data else None
        except ValueError:
            return None

    def _read_status(self, status_dir: str) -> dict | None:
        status = self._read_json(f"{status_dir}/status")
        return status if status is not None and isinstance(status.get("status"), int) else None

    def _download(self, remote_dir: str, workdir: Path, uploaded: dict[str, tuple[int, int]], limits,
                  result: ExecResult) -> tuple[list[str], list[str]]:
        sftp = self.connection.sftp()
        per_file = int(limits.file_size_mb) * 2**20
        budget = 4 * per_file
        downloaded, skipped = [], []
        try:
            stack = [""]
            while stack:
                rel_dir = stack.pop()
                for attr in sorted(sftp.listdir_attr(f"{remote_dir}/{rel_dir}".rstrip("/")), key=lambda a: a.filename):
                    name = attr.filename
                    rel = f"{rel_dir}/{name}" if rel_dir else name
                    if name in (".", "..") or "/" in name or "\0" in name or rel in (STATUS_DIR, ".tmp"):
                        continue
                    if stat.S_ISDIR(attr.st_mode or 0):
                        stack.append(rel)
                        continue
                    if not stat.S_ISREG(attr.st_mode or 0):
                        skipped.append(f"{rel} (not a regular file)")
                        continue
                    if uploaded.get(rel) == (attr.st_size, attr.st_mtime):
                        continue  # an input the program left alone: the local mirror has it
                    if len(downloaded) >= MAX_DOWNLOAD_FILES or attr.st_size > per_file or attr.st_size > budget:
                        skipped.append(f"{rel} ({attr.st_size} bytes)")
                        continue
                    local = (workdir / rel).resolve()
                    if not local.is_relative_to(workdir.resolve()):
                        skipped.append(f"{rel} (outside the work dir)")
                        continue
                    local.parent.mkdir(parents=True, exist_ok=True)
                    if local.is_symlink() or local.is_dir():
                        skipped.append(f"{rel} (clashes with a local entry)")
                        continue
                    sftp.get(f"{remote_dir}/{rel}", str(local))
                    budget -= attr.st_size
                    downloaded.append(rel)
        except RemoteError:
            raise
        except Exception as exc:
            raise self.connection.failure("download failed", exc) from None
        return downloaded, skipped

    def _sweep(self, cfg: dict, remove: bool = False) -> dict:
        conn = self.connection
        payload = json.dumps({**cfg, "remove": remove})
        status, out, err = conn.run(f"cd / && {shlex.quote(self.target.python)} -S -c {shlex.quote(SWEEP)} "
                                    f"{shlex.quote(payload)}", timeout=COMMAND_TIMEOUT_S)
        try:
            report = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise RemoteError("remote_command", self.target.label,
                              f"the kill sweep failed (exit {status}): {redact(err.strip())[:200]}") from None
        return report

    def _cleanup_after_failure(self, cfg: dict) -> None:
        """After an error: one reconnect attempt to kill what the attempt left and remove its dir."""
        try:
            self.connection.ensure()
            self._sweep(cfg, remove=True)
        except Exception:
            pass


def _limit_hit(limits, sig, returncode, timed_out, stderr, cpu_used) -> str | None:
    """As a local run's (``limits.limit_hit``), without the cgroup counts a remote run lacks."""
    signalled = signal_limit(limits, sig, timed_out, cpu_used)
    if signalled or returncode in (0, None) or timed_out:
        return signalled
    return stderr_limit(stderr)
