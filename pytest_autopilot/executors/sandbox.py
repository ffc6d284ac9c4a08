"""Run untrusted, LLM-generated code with limits and as much isolation as the OS allows.

Each run goes through ``_launcher.py`` in a new session (own process group). The launcher
joins a per-run pids cgroup, enters new network/mount/IPC/PID namespaces, makes the host file
system read-only except the work dir and temp dirs, drops dangerous capabilities, sets rlimits
and execs the code. The harness enforces the wall-clock timeout, captures bounded output and
afterwards kills everything left in the process group and the cgroup. What was actually
applied is reported in ``ExecResult.isolation``; nothing here assumes a step succeeded.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
import resource
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_autopilot.core.records import ExecResult

_LAUNCHER = Path(__file__).resolve().with_name("_launcher.py")
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # the repository (or site-packages)
_LAUNCHER_PROCESSES = 2  # launcher + namespace init, on top of the code's own processes
_DRAIN_S = 1.0  # after the kill, how long to wait for the pipes to reach EOF
_REAP_S = 5.0  # how long to wait for the killed launcher's exit status

_ENV_ALLOW = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TERM")
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH", re.IGNORECASE)
# Credential stores hidden from generated code (its output flows into LLM repair prompts).
_SECRET_HOME_ENTRIES = (".ssh", ".aws", ".azure", ".config/gcloud", ".config/gh", ".kube", ".docker",
                        ".gnupg", ".netrc", ".git-credentials", ".pypirc", ".npmrc")

# stderr fingerprints of resource exhaustion, only consulted when the run failed.
_MEMORY_ERR = re.compile(r"MemoryError|Cannot allocate memory|std::bad_alloc|out of memory|Unable to allocate",
                         re.IGNORECASE)
_FSIZE_ERR = re.compile(r"File too large|\[Errno 27\]|File size limit exceeded")  # last: a shell's report
_CPU_ERR = re.compile(r"CPU time limit exceeded")  # a shell reporting its child's SIGXCPU
_FORK_ERR = re.compile(r"BlockingIOError|Resource temporarily unavailable|can't start new thread")


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 60.0  # wall clock; process group (and cgroup) killed at expiry
    cpu_s: int = 120  # RLIMIT_CPU (SIGXCPU, then SIGKILL one second later)
    memory_mb: int = 4096  # RLIMIT_AS
    file_size_mb: int = 256  # RLIMIT_FSIZE
    processes: int = 64  # pids cgroup pids.max when available, else RLIMIT_NPROC (non-root)
    output_bytes: int = 64_000  # stdout and stderr each captured up to this, rest dropped
    network: bool = False  # False: run in a fresh network namespace when the OS permits

    def replace(self, **changes) -> "Limits":
        """``dataclasses.replace`` that ignores ``None`` values (handy for optional overrides)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def scrubbed_env(workdir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for generated code: an allow-list, never the harness's (API keys live there)."""
    workdir = Path(workdir)
    env = {k: os.environ[k] for k in _ENV_ALLOW if k in os.environ}
    env.setdefault("PATH", os.defpath)
    env.update({
        "HOME": str(workdir),
        "TMPDIR": str(workdir / ".tmp"),
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
        # One thread per numeric library: threads count against the process limit.
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "NUMEXPR_NUM_THREADS": "1",
        "VECLIB_MAXIMUM_THREADS": "1",
    })
    for key, value in (extra or {}).items():
        if _SECRET_NAME.search(key):
            raise ValueError(f"refusing to pass secret-looking environment variable {key!r} to generated code")
        if not key or "=" in key or "\0" in key:
            raise ValueError(f"invalid environment variable name {key!r}")
        env[key] = str(value)
    return env


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


# ---------------------------------------------------------------------------------------------
# pids cgroup: the only process limit that works for root (RLIMIT_NPROC does not apply to uid 0)

_cgroup_parent: list[Path | None] = []  # cached detection result, [] = not probed yet
_cgroup_counter = itertools.count()


def _pid_namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "0"


def _pids_cgroup_candidates() -> list[Path]:
    own: dict[str, str] = {}  # controller ("" = cgroup v2) -> our cgroup path
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for c in controllers.split(",") if controllers else [""]:
            own[c] = path
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        sep = fields.index("-")
        fstype, root, point = fields[sep + 1], fields[3], fields[4]
        key = "pids" if fstype == "cgroup" and "pids" in fields[sep + 3].split(",") else \
            "" if fstype == "cgroup2" else None
        if key is None or key not in own:
            continue
        rel = own[key][len(root):] if root != "/" and own[key].startswith(root) else own[key]
        found.append(Path(point + rel.rstrip("/")) / "pytest-autopilot")
    return found


def _probe_pids_cgroup() -> Path | None:
    for parent in _pids_cgroup_candidates():
        try:
            parent.mkdir(exist_ok=True)
            if not (parent / "pids.max").exists() and (parent / "cgroup.subtree_control").exists():
                (parent / "cgroup.subtree_control").write_text("+pids")  # cgroup v2
            probe = parent / f"probe-{os.getpid()}-{secrets.token_hex(4)}"
            probe.mkdir()
            try:
                (probe / "pids.max").write_text("1")
            finally:
                probe.rmdir()
        except OSError:
            continue
        for stale in parent.iterdir():  # left behind by a crashed harness of our PID namespace
            pidns, _, creator = stale.name.partition("-")[0].partition(".")
            if pidns == _pid_namespace() and creator.isdigit() and not Path(f"/proc/{creator}").exists():
                _destroy_cgroup(stale)
        return parent
    return None


def _create_pids_cgroup(pids_max: int) -> Path | None:
    if not _cgroup_parent:
        try:
            _cgroup_parent.append(_probe_pids_cgroup())
        except (OSError, ValueError):
            _cgroup_parent.append(None)
    if _cgroup_parent[0] is None:
        return None
    # <pid namespace>.<our pid>-...: lets a later harness recognise cgroups whose creator died.
    cg = _cgroup_parent[0] / f"{_pid_namespace()}.{os.getpid()}-{next(_cgroup_counter)}-{secrets.token_hex(4)}"
    try:
        cg.mkdir()
        (cg / "pids.max").write_text(str(pids_max))
        return cg
    except OSError:
        _destroy_cgroup(cg)
        return None


def _cgroup_limit_events(cg: Path | None) -> int:
    """How often a fork in the cgroup was refused because of pids.max."""
    try:
        for line in (cg / "pids.events").read_text().splitlines():
            name, value = line.split()
            if name == "max":
                return int(value)
    except (OSError, TypeError, ValueError):
        pass
    return 0


def _destroy_cgroup(cg: Path) -> None:
    """SIGKILL every member (forks are blocked first so the list converges), then remove it."""
    try:
        (cg / "pids.max").write_text("0")
    except OSError:
        pass
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        try:
            pids = [int(p) for p in (cg / "cgroup.procs").read_text().split()]
        except OSError:
            return  # gone already
        if not pids:
            try:
                cg.rmdir()
                return
            except OSError:
                pass  # members still exiting
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.01)


# ---------------------------------------------------------------------------------------------


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


def _session_size(sid: int) -> int:
    """Number of live processes in session ``sid`` (as seen from our PID namespace)."""
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            count += fields[3] == str(sid) and fields[0] != "Z"  # state, ppid, pgrp, session
    return count


def _reap(pid: int) -> tuple[int | None, resource.struct_rusage | None]:
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


def _stdin_file(data: bytes):
    f = tempfile.TemporaryFile()
    f.write(data)
    f.seek(0)
    return f


@dataclass
class _Prepared:
    workdir: Path
    env: dict[str, str]
    cgroup: Path | None
    rlimits: dict[str, list[int]]
    config: dict  # the launcher configuration without status_fd


@dataclass
class _Outcome:
    timed_out: bool
    duration: float
    limit_events: int
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


def _supervise(pid: int, pipes: Sequence[int], status_r: int, cgroup: Path | None, lim: Limits, start: float,
               reap: Callable[[int], tuple[int | None, float | None]]) -> _Outcome:
    """Supervise a started run, shared by the cold sandbox and the warm executor.

    ``pid`` is the run's top process, leader of its own session and process group. Capture
    ``pipes`` (stdout, stderr) until it exits or the timeout passes; then, whatever happened, kill
    its process group and cgroup, drain the pipes, ``reap(pid)`` -> (raw wait status, cpu
    seconds), and read the launcher's status lines from ``status_r`` (closed here).
    """
    capture = _Capture(pipes, lim.output_bytes)
    timed_out, limit_events, status, cpu_used = False, 0, None, None
    try:
        timed_out = _wait_exit(pid, capture, start + lim.timeout_s)
        duration = time.monotonic() - start
        # Without a cgroup there is no event counter: a session full to the limit is the tell.
        limit_events = _cgroup_limit_events(cgroup) if cgroup else int(_session_size(pid) >= lim.processes)
    finally:
        # Whatever happened (even KeyboardInterrupt), nothing of the run may survive it.
        if cgroup:
            try:
                (cgroup / "pids.max").write_text("0")
            except OSError:
                pass
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        if cgroup:
            _destroy_cgroup(cgroup)
        drain_until = time.monotonic() + _DRAIN_S
        while capture.open_pipes and time.monotonic() < drain_until:
            capture.pump(drain_until - time.monotonic())
        try:
            status, cpu_used = reap(pid)
        finally:
            capture.close()
            report = _read_status(status_r)
    stdout, stderr = capture.texts()
    return _Outcome(timed_out, duration, limit_events, status, cpu_used, stdout, stderr, capture.truncated, report)


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
        prep = self._prepare(workdir, lim, env_extra)
        status_r, status_w = os.pipe()
        config = {**prep.config, "status_fd": status_w}
        cmd = [sys.executable, "-I", str(_LAUNCHER), json.dumps(config), "--", *argv]
        stdin_file = None
        start = time.monotonic()
        try:
            if stdin is not None:  # a file, not a pipe: writing it can never block us
                stdin_file = _stdin_file(stdin)
            proc = subprocess.Popen(cmd, cwd=prep.workdir, env=prep.env, stdin=stdin_file or subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(status_w,),
                                    start_new_session=True)
        except BaseException:
            os.close(status_r)
            if prep.cgroup:
                _destroy_cgroup(prep.cgroup)
            raise
        finally:
            os.close(status_w)
            if stdin_file:
                stdin_file.close()

        def reap(pid: int) -> tuple[int | None, float | None]:
            status, usage = _reap(pid)
            proc.returncode = -signal.SIGKILL if status is None else os.waitstatus_to_exitcode(status)
            return status, None if usage is None else usage.ru_utime + usage.ru_stime

        try:
            outcome = _supervise(proc.pid, (proc.stdout.fileno(), proc.stderr.fileno()), status_r, prep.cgroup,
                                 lim, start, reap)
        finally:
            proc.stdout.close()
            proc.stderr.close()
        return self._result(lim, prep, outcome)

    def _prepare(self, workdir: Path, lim: Limits, env_extra: Mapping[str, str] | None) -> _Prepared:
        """Everything a run needs before its process starts: env, pids cgroup, launcher config."""
        workdir = Path(workdir).resolve()
        if not workdir.is_dir():
            raise ValueError(f"workdir {workdir} is not a directory")
        _refuse_inside_project(workdir, "workdir")
        env = scrubbed_env(workdir, env_extra)
        (workdir / ".tmp").mkdir(exist_ok=True)
        cgroup = _create_pids_cgroup(lim.processes + _LAUNCHER_PROCESSES)
        rlimits = self._rlimits(lim, nproc=cgroup is None and os.geteuid() != 0)
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
        return _Prepared(workdir, env, cgroup, rlimits, config)

    @staticmethod
    def _result(lim: Limits, prep: _Prepared, outcome: _Outcome, extra_isolation: Mapping | None = None
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
            limit_hit=_limit_hit(lim, sig, returncode, outcome.timed_out, outcome.stderr, cpu_used,
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
                "rlimits": _describe_rlimits(prep.rlimits),
                "env_keys": sorted(prep.env),
                "cpu_s_used": None if cpu_used is None else round(cpu_used, 3),
                "launcher_errors": setup.get("errors", []),
                **(extra_isolation or {}),
            },
        )

    @staticmethod
    def _rlimits(lim: Limits, nproc: bool) -> dict[str, list[int]]:
        def cap(name: str, value: int) -> list[int]:
            hard = resource.getrlimit(getattr(resource, name))[1]  # we cannot raise our own hard limit
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            return [value, value]

        limits = {
            "RLIMIT_CPU": cap("RLIMIT_CPU", lim.cpu_s),
            "RLIMIT_AS": cap("RLIMIT_AS", lim.memory_mb * 2**20),
            "RLIMIT_FSIZE": cap("RLIMIT_FSIZE", lim.file_size_mb * 2**20),
            "RLIMIT_CORE": [0, 0],  # no core files in the work dir
        }
        cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
        if cpu_hard == resource.RLIM_INFINITY or cpu_hard > lim.cpu_s:
            limits["RLIMIT_CPU"][1] = lim.cpu_s + 1  # SIGXCPU at the soft limit, SIGKILL if ignored
        if nproc:
            limits["RLIMIT_NPROC"] = cap("RLIMIT_NPROC", lim.processes + _LAUNCHER_PROCESSES)
        return limits

    @staticmethod
    def _hidden_paths() -> list[str]:
        homes = {str(Path.home()), "/root"}
        paths = [os.path.join(h, e) for h in sorted(homes) for e in _SECRET_HOME_ENTRIES]
        paths += [str(root / ".env") for root in _project_roots()]
        return [p for p in paths if os.path.lexists(p)]


def _describe_rlimits(rlimits: dict[str, list[int]]) -> dict[str, int]:
    mb = 2**20
    out = {"cpu_s": rlimits["RLIMIT_CPU"][0], "memory_mb": rlimits["RLIMIT_AS"][0] // mb,
           "file_size_mb": rlimits["RLIMIT_FSIZE"][0] // mb, "core": rlimits["RLIMIT_CORE"][0]}
    if "RLIMIT_NPROC" in rlimits:
        out["nproc"] = rlimits["RLIMIT_NPROC"][0]
    return out


def _limit_hit(lim: Limits, sig: int | None, returncode: int | None, timed_out: bool, stderr: str,
               cpu_used: float | None, limit_events: int) -> str | None:
    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and not timed_out and cpu_used is not None
                                 and cpu_used >= lim.cpu_s):
        return "cpu"
    if sig == signal.SIGXFSZ:
        return "file_size"
    if limit_events > 0:
        return "processes"
    if returncode == 0 and not sig:
        return None
    if _CPU_ERR.search(stderr):
        return "cpu"
    if _MEMORY_ERR.search(stderr):
        return "memory"
    if _FSIZE_ERR.search(stderr):
        return "file_size"
    if _FORK_ERR.search(stderr):
        return "processes"
    if sig == signal.SIGKILL and not timed_out:
        return "memory"  # killed by nobody we know of: most likely the kernel's OOM killer
    return None
