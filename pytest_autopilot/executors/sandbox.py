"""Run untrusted, LLM-generated code with limits and as much isolation as the OS allows.

Each run goes through ``_launcher.py`` in a new session (own process group). The launcher
joins a per-run pids cgroup, enters new network/mount/IPC/PID namespaces, makes the host file
system read-only except the work dir and temp dirs, drops dangerous capabilities, sets rlimits
and execs the code. The harness enforces the wall-clock timeout, captures bounded output and
afterwards kills everything left in the process group and the cgroup. What was actually
applied is reported in ``ExecResult.isolation``; nothing here assumes a step succeeded.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_autopilot.core.records import ExecResult
from pytest_autopilot.executors.cgroups import create_pids_cgroup, destroy_cgroup
from pytest_autopilot.executors.limits import (
    LAUNCHER_PROCESSES,
    SECRET_HOME_ENTRIES,
    Limits,
    describe_rlimits,
    limit_hit,
    rlimits_for,
    scrubbed_env,
)
from pytest_autopilot.executors.supervisor import Outcome, reap_child, stdin_file, supervise

__all__ = ["LAUNCHER", "Limits", "Prepared", "Sandbox", "scrubbed_env"]

LAUNCHER = Path(__file__).resolve().with_name("_launcher.py")  # run by path, ``python -I``: stdlib only
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # the repository (or site-packages)


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _project_roots() -> list[Path]:
    """Trees generated code must never write to: this package's repository and the project at cwd."""
    roots = [_PACKAGE_ROOT]
    cwd = Path.cwd().resolve()
    if (cwd / "pyproject.toml").exists() or (cwd / ".git").exists():
        roots.append(cwd)
    return roots


def _refuse_inside_project(path: Path, what: str) -> None:
    for root in _project_roots():
        if _inside(path, root):
            raise ValueError(f"{what} {path} is inside the project tree {root}; use a directory outside it")


@dataclass
class Prepared:
    """A run's set-up, made before its process starts (``Sandbox.prepare``)."""

    workdir: Path
    env: dict[str, str]
    cgroup: Path | None
    rlimits: dict[str, list[int]]
    config: dict  # the launcher configuration without status_fd


class Sandbox:
    """Runs argv in fresh work dirs under ``base_dir`` with ``limits``.

    ``readonly_paths`` are made read-only in addition to the defaults (the whole host file
    system except the work dir, the system temp dir, /var/tmp, /dev/shm and /proc; explicitly
    also the repository, the project at cwd and ``base_dir``, so sibling work dirs are safe).
    """

    def __init__(self, limits: Limits = Limits(), base_dir: Path | None = None, *,
                 readonly_paths: Sequence[Path | str] = ()):
        self.limits = limits
        default = base_dir is None
        base = Path(tempfile.gettempdir()) / f"pytest-autopilot-{os.getuid()}" if default else Path(base_dir)
        base = base.resolve()
        _refuse_inside_project(base, "sandbox base_dir")
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = base.stat()
        if not base.is_dir() or st.st_uid != os.getuid():
            raise ValueError(f"sandbox base_dir {base} is not a directory owned by uid {os.getuid()}")
        if default:
            base.chmod(0o700)  # a predictable name in a shared /tmp: keep others out
        self.base_dir = base
        self.readonly_paths = [str(Path(p).resolve()) for p in readonly_paths]

    def new_workdir(self, prefix: str = "attempt-") -> Path:
        if os.sep in prefix or prefix in (".", ".."):
            raise ValueError(f"workdir prefix {prefix!r} must not contain a path separator")
        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.base_dir))

    def cleanup(self, workdir: Path) -> None:
        workdir = Path(workdir).resolve()
        if not _inside(workdir, self.base_dir) or workdir == self.base_dir:
            raise ValueError(f"refusing to delete {workdir}: not a work dir under {self.base_dir}")
        # Generated code may have left directories without write/search permission.
        for root, dirs, _files in os.walk(workdir):
            for d in dirs:
                path = os.path.join(root, d)
                if not os.path.islink(path):
                    try:
                        os.chmod(path, 0o700)
                    except OSError:
                        pass
        shutil.rmtree(workdir, ignore_errors=True)

    def run_python(self, script: Path | str, workdir: Path, *, args: Sequence[str] = (),
                   limits: Limits | None = None, env_extra: Mapping[str, str] | None = None) -> ExecResult:
        return self.run([sys.executable, "-E", "-s", str(script), *map(str, args)], workdir,
                        limits=limits, env_extra=env_extra)

    def run(self, argv: Sequence[str], workdir: Path, *, limits: Limits | None = None,
            env_extra: Mapping[str, str] | None = None, stdin: bytes | None = None) -> ExecResult:
        lim = limits or self.limits
        argv = [str(a) for a in argv]
        if not argv:
            raise ValueError("empty argv")
        prep = self.prepare(workdir, lim, env_extra)
        status_r, status_w = os.pipe()
        config = {**prep.config, "status_fd": status_w}
        cmd = [sys.executable, "-I", str(LAUNCHER), json.dumps(config), "--", *argv]
        stdin_fh = None
        start = time.monotonic()
        try:
            if stdin is not None:  # a file, not a pipe: writing it can never block us
                stdin_fh = stdin_file(stdin)
            proc = subprocess.Popen(cmd, cwd=prep.workdir, env=prep.env, stdin=stdin_fh or subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(status_w,),
                                    start_new_session=True)
        except BaseException:
            os.close(status_r)
            if prep.cgroup:
                destroy_cgroup(prep.cgroup)
            raise
        finally:
            os.close(status_w)
            if stdin_fh:
                stdin_fh.close()

        def reap(pid: int) -> tuple[int | None, float | None]:
            status, usage = reap_child(pid)
            proc.returncode = -signal.SIGKILL if status is None else os.waitstatus_to_exitcode(status)
            return status, None if usage is None else usage.ru_utime + usage.ru_stime

        try:
            outcome = supervise(proc.pid, (proc.stdout.fileno(), proc.stderr.fileno()), status_r, prep.cgroup,
                                lim, start, reap)
        finally:
            proc.stdout.close()
            proc.stderr.close()
        return self.exec_result(lim, prep, outcome)

    def prepare(self, workdir: Path, lim: Limits, env_extra: Mapping[str, str] | None) -> Prepared:
        """Everything a run needs before its process starts: env, pids cgroup, launcher config."""
        workdir = Path(workdir).resolve()
        if not workdir.is_dir():
            raise ValueError(f"workdir {workdir} is not a directory")
        _refuse_inside_project(workdir, "workdir")
        env = scrubbed_env(workdir, env_extra)
        (workdir / ".tmp").mkdir(exist_ok=True)
        cgroup = create_pids_cgroup(lim.processes + LAUNCHER_PROCESSES)
        rlimits = rlimits_for(lim, nproc=cgroup is None and os.geteuid() != 0)
        config = {  # the launcher's configuration, without its status_fd
            "cgroup": str(cgroup) if cgroup else None,
            "rlimits": rlimits,
            "network": lim.network,
            "workdir": str(workdir),
            "readonly": ["/", "/proc/sys", "/proc/sysrq-trigger", str(self.base_dir),
                         *map(str, _project_roots()), *self.readonly_paths],
            "writable": [str(workdir), tempfile.gettempdir(), "/var/tmp", "/dev/shm", "/dev/pts", "/proc"],
            "hidden": self._hidden_paths(),
            "shm_mb": max(16, min(lim.memory_mb, 1024)),
        }
        return Prepared(workdir, env, cgroup, rlimits, config)

    @staticmethod
    def exec_result(lim: Limits, prep: Prepared, outcome: Outcome, extra_isolation: Mapping | None = None
                    ) -> ExecResult:
        """The ExecResult of a supervised run (cold or warm)."""
        report, status = outcome.report, outcome.status
        if report.get("exit_status") is not None:  # the target's own status, relayed by pid 1
            status = report["exit_status"]
        returncode, sig = None, None
        if outcome.timed_out:
            sig = signal.SIGKILL
        elif status is not None:
            returncode = os.waitstatus_to_exitcode(status)
            sig = -returncode if returncode < 0 else None
        cpu_used = outcome.cpu_used
        setup = report.get("setup", {})
        return ExecResult(
            returncode=returncode,
            stdout=outcome.stdout,
            stderr=outcome.stderr,
            duration_s=round(outcome.duration, 3),
            timed_out=outcome.timed_out,
            signal=sig,
            limit_hit=limit_hit(lim, sig, returncode, outcome.timed_out, outcome.stderr, cpu_used,
                                outcome.limit_events),
            output_truncated=outcome.truncated,
            isolation={
                "network_namespace": bool(setup.get("network_namespace")),
                "pid_namespace": bool(setup.get("pid_namespace")),
                "mount_namespace": bool(setup.get("mount_namespace")),
                "ipc_namespace": bool(setup.get("ipc_namespace")),
                "user_namespace": bool(setup.get("user_namespace")),
                "readonly_paths": setup.get("readonly_paths", []),
                "hidden_paths": setup.get("hidden_paths", []),
                "capabilities_dropped": bool(setup.get("capabilities_dropped")),
                "no_new_privs": bool(setup.get("no_new_privs")),
                "pids_cgroup": bool(prep.cgroup) and bool(setup.get("pids_cgroup")),
                "rlimit_nproc": "RLIMIT_NPROC" in prep.rlimits,
                "rlimits": describe_rlimits(prep.rlimits),
                "env_keys": sorted(prep.env),
                "cpu_s_used": None if cpu_used is None else round(cpu_used, 3),
                "launcher_errors": setup.get("errors", []),
                **(extra_isolation or {}),
            },
        )

    @staticmethod
    def _hidden_paths() -> list[str]:
        homes = {str(Path.home()), "/root"}
        paths = [os.path.join(h, e) for h in sorted(homes) for e in SECRET_HOME_ENTRIES]
        paths += [str(root / ".env") for root in _project_roots()]
        return [p for p in paths if os.path.lexists(p)]

