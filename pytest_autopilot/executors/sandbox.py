"""Run untrusted, LLM-generated code with limits and as much isolation as the OS allows.

Each run goes through ``_launcher.py`` in a new session (own process group). The launcher
dies with the harness, joins the run's cgroup (pids and memory limits), enters new
network/mount/IPC/PID namespaces, pivots into the allow-list view of the file system
(``fs_view.py``; the read-only host where the OS refuses that), drops dangerous capabilities,
sets rlimits and execs the code. The harness enforces the wall-clock timeout, captures bounded
output and afterwards kills everything left in the process group and the cgroup. What was
actually applied is reported in ``ExecResult.isolation``; nothing here assumes a step
succeeded. ``remove_leftovers`` removes what crashed harness processes left behind.
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
from pytest_autopilot.executors.cgroups import (
    RunCgroup,
    create_run_cgroup,
    owner_gone,
    owner_tag,
    remove_orphaned_cgroups,
)
from pytest_autopilot.executors.fs_view import (
    PRIVATE_TMP,
    hidden_paths,
    homes,
    masked_in_view,
    readonly_view,
    visible_executable,
)
from pytest_autopilot.executors.fs_view import inside as _inside
from pytest_autopilot.executors.limits import (
    LAUNCHER_MEMORY_MB,
    LAUNCHER_PROCESSES,
    Limits,
    describe_rlimits,
    limit_hit,
    rlimits_for,
    scrubbed_env,
)
from pytest_autopilot.executors.supervisor import Outcome, reap_child, stdin_file, supervise

__all__ = ["LAUNCHER", "Limits", "Prepared", "Sandbox", "isolation_record", "remove_leftovers", "scrubbed_env"]

LAUNCHER = Path(__file__).resolve().parent / "launcher" / "_launcher.py"  # run by path, ``python -I``: stdlib only
_PACKAGE = Path(__file__).resolve().parent.parent  # pytest_autopilot itself
VIEW_ROOT = ".view-root"  # empty mount point of each run's fresh root (mounted in its own namespace only)
OWNERS = ".owners"  # <work dir name> -> owner_tag of its creator, for remove_leftovers


def default_base_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"pytest-autopilot-{os.getuid()}"


def script_outside(script: Path | str, workdir: Path) -> list[str]:
    """``[script]`` when a script run from ``workdir`` lies outside it (a harness program such as
    the TFLM probe), so the run's view must show it; else nothing."""
    path = (Path(workdir) / script).resolve()
    return [] if _inside(path, Path(workdir).resolve()) else [str(path)]


def _remove_tree(path: Path) -> None:
    # Generated code may have left directories without write/search permission.
    for root, dirs, _files in os.walk(path):
        for d in dirs:
            sub = os.path.join(root, d)
            if not os.path.islink(sub):
                try:
                    os.chmod(sub, 0o700)
                except OSError:
                    pass
    shutil.rmtree(path, ignore_errors=True)


def _is_project(path: Path) -> bool:
    return (path / "pyproject.toml").exists() or (path / ".git").exists()


def _project_roots() -> list[Path]:
    """Trees generated code must never see: this package's checkout (the package alone when it
    is installed in site-packages) and the project at cwd."""
    roots = [_PACKAGE.parent if _is_project(_PACKAGE.parent) else _PACKAGE]
    cwd = Path.cwd().resolve()
    if _is_project(cwd) and cwd not in roots:
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
    cgroup: RunCgroup | None
    rlimits: dict[str, list[int]]
    config: dict  # the launcher configuration without status_fd


class Sandbox:
    """Runs argv in fresh work dirs under ``base_dir`` with ``limits``.

    ``readonly_paths`` are visible read-only in addition to the allow-list of ``fs_view.py``
    (in the read-only-host fallback: read-only, as is everything there but the work dir, the
    temp dirs, /dev/shm and /proc).
    """

    def __init__(self, limits: Limits = Limits(), base_dir: Path | None = None, *,
                 readonly_paths: Sequence[Path | str] = (), session_tag: str | None = None):
        self.limits = limits
        self.session_tag = session_tag  # the session whose processes share warm servers here (warm_shared); None: this one
        default = base_dir is None
        base = default_base_dir() if default else Path(base_dir)
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
        for name in (VIEW_ROOT, OWNERS):
            (base / name).mkdir(mode=0o700, exist_ok=True)

    def new_workdir(self, prefix: str = "attempt-") -> Path:
        if os.sep in prefix or prefix in (".", "..") or prefix.startswith("."):
            raise ValueError(f"workdir prefix {prefix!r} must not contain a path separator or start with a dot")
        workdir = Path(tempfile.mkdtemp(prefix=prefix, dir=self.base_dir))
        (self.base_dir / OWNERS / workdir.name).write_text(owner_tag())
        return workdir

    def cleanup(self, workdir: Path) -> None:
        workdir = Path(workdir).resolve()
        if not _inside(workdir, self.base_dir) or workdir == self.base_dir:
            raise ValueError(f"refusing to delete {workdir}: not a work dir under {self.base_dir}")
        _remove_tree(workdir)
        if workdir.parent == self.base_dir:
            (self.base_dir / OWNERS / workdir.name).unlink(missing_ok=True)

    def run_python(self, script: Path | str, workdir: Path, *, args: Sequence[str] = (),
                   limits: Limits | None = None, env_extra: Mapping[str, str] | None = None) -> ExecResult:
        return self.run([visible_executable(), "-s", str(script), *map(str, args)], workdir,
                        limits=limits, env_extra=env_extra, readonly=script_outside(script, workdir))

    def run(self, argv: Sequence[str], workdir: Path, *, limits: Limits | None = None,
            env_extra: Mapping[str, str] | None = None, stdin: bytes | None = None,
            interpreter_trees: Sequence[str] | None = None, readonly: Sequence[Path | str] = ()) -> ExecResult:
        """``interpreter_trees``: the trees of the interpreter argv runs (a declared environment's
        venv and base), shown instead of the harness's own, whose site-packages stay hidden.
        ``readonly``: more paths this run sees read-only (e.g. a harness script it runs)."""
        lim = limits or self.limits
        argv = [str(a) for a in argv]
        if not argv:
            raise ValueError("empty argv")
        prep = self.prepare(workdir, lim, env_extra, argv, interpreter_trees, readonly)
        status_r, status_w = os.pipe()
        config = {**prep.config, "status_fd": status_w, "parent_pid": os.getpid()}  # dies with us
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
                prep.cgroup.destroy()
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

    def prepare(self, workdir: Path, lim: Limits, env_extra: Mapping[str, str] | None,
                argv: Sequence[str] = (), interpreter_trees: Sequence[str] | None = None,
                readonly: Sequence[Path | str] = ()) -> Prepared:
        """Everything a run needs before its process starts: env, cgroup, launcher config."""
        workdir = Path(workdir).resolve()
        if not workdir.is_dir():
            raise ValueError(f"workdir {workdir} is not a directory")
        _refuse_inside_project(workdir, "workdir")
        env = scrubbed_env(workdir, env_extra)
        (workdir / ".tmp").mkdir(exist_ok=True)
        cgroup = create_run_cgroup(lim.processes + LAUNCHER_PROCESSES, (lim.memory_mb + LAUNCHER_MEMORY_MB) * 2**20)
        rlimits = rlimits_for(lim, nproc=(cgroup is None or cgroup.pids is None) and os.geteuid() != 0)
        roots = _project_roots()
        protected = [*map(str, roots), str(self.base_dir), *homes()]
        explicit = [*self.readonly_paths, *(str(Path(p).resolve()) for p in readonly)]
        readonly = readonly_view(roots, protected, explicit, argv, env, env_extra, interpreter_trees)
        tmp_mb = max(16, min(lim.memory_mb, 1024))
        config = {  # the launcher's configuration, without its status_fd
            "cgroups": cgroup.config() if cgroup else {},
            "rlimits": rlimits,
            "network": lim.network,
            "workdir": str(workdir),
            "view": {"root": str(self.base_dir / VIEW_ROOT), "readonly": readonly, "tmpfs": list(PRIVATE_TMP),
                     "masked": masked_in_view(readonly, protected), "tmp_mb": tmp_mb},
            # the read-only-host fallback
            "readonly": ["/", "/proc/sys", "/proc/sysrq-trigger", str(self.base_dir), *map(str, roots),
                         *self.readonly_paths],
            "writable": [str(workdir), tempfile.gettempdir(), "/var/tmp", "/dev/shm", "/dev/pts", "/proc"],
            "hidden": hidden_paths(roots),
            "shm_mb": tmp_mb,
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
        isolation = {**isolation_record(prep, report.get("setup", {}), cpu_used), **(extra_isolation or {})}
        return ExecResult(
            returncode=returncode,
            stdout=outcome.stdout,
            stderr=outcome.stderr,
            duration_s=round(outcome.duration, 3),
            timed_out=outcome.timed_out,
            signal=sig,
            limit_hit=limit_hit(lim, sig, returncode, outcome.timed_out, outcome.stderr, cpu_used,
                                outcome.limit_events, outcome.oom_kills, isolation["memory_cgroup"]),
            output_truncated=outcome.truncated,
            isolation=isolation,
        )


def isolation_record(prep: Prepared, setup: Mapping, cpu_used: float | None) -> dict:
    """What a launcher run actually got, from its setup report (also the SSH loopback view's)."""
    memory_cgroup = bool(prep.cgroup and prep.cgroup.memory) and bool(setup.get("memory_cgroup"))
    return {
        "network_namespace": bool(setup.get("network_namespace")),
        "pid_namespace": bool(setup.get("pid_namespace")),
        "mount_namespace": bool(setup.get("mount_namespace")),
        "ipc_namespace": bool(setup.get("ipc_namespace")),
        "user_namespace": bool(setup.get("user_namespace")),
        "fs_view": setup.get("fs_view", "host"),  # "allow-list" | "read-only host" | "host"
        "fs_view_reason": setup.get("fs_view_reason"),  # why not "allow-list"
        "readonly_paths": setup.get("readonly_paths", []),
        "hidden_paths": setup.get("hidden_paths", []),
        "capabilities_dropped": bool(setup.get("capabilities_dropped")),
        "no_new_privs": bool(setup.get("no_new_privs")),
        "dies_with_harness": bool(setup.get("died_with_parent")),
        "pids_cgroup": bool(prep.cgroup and prep.cgroup.pids) and bool(setup.get("pids_cgroup")),
        "memory_cgroup": memory_cgroup,
        "memory_limit": "cgroup" if memory_cgroup else "rlimit",  # total of all processes, or each alone
        "rlimit_nproc": "RLIMIT_NPROC" in prep.rlimits,
        "rlimits": describe_rlimits(prep.rlimits),
        "env_keys": sorted(prep.env),
        "cpu_s_used": None if cpu_used is None else round(cpu_used, 3),
        "launcher_errors": setup.get("errors", []),
    }


def remove_leftovers(base_dir: Path | str | None = None) -> dict[str, list[str]]:
    """Kill and remove what crashed harness processes left behind: every run cgroup whose creator
    has exited (with whatever still runs in it) and every work dir of ``base_dir`` (default: the
    default base dir) whose creator has. The controller calls it when the session ends, so the
    runs of crashed xdist workers go too; live processes' runs are never touched."""
    removed = {"cgroups": [str(cg) for cg in remove_orphaned_cgroups()], "workdirs": []}
    base = Path(base_dir) if base_dir is not None else default_base_dir()
    try:
        owners = sorted((base / OWNERS).iterdir())
    except OSError:
        return removed
    for record in owners:
        try:
            gone = owner_gone(record.read_text().strip())
        except OSError:
            continue
        if gone:
            workdir = base / record.name
            if workdir.is_dir() and not workdir.is_symlink():
                _remove_tree(workdir)
                removed["workdirs"].append(str(workdir))
            record.unlink(missing_ok=True)
    return removed
