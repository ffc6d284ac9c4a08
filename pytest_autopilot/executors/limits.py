"""What a sandboxed run may use and see: its resource limits, the rlimits they become, the
environment generated code gets, and how a failed run is recognised as one that hit a limit.

Shared by the local sandbox (``sandbox.py``, warm or cold) and the SSH executor, so a limit
means the same wherever the code runs. Generated code never sees the harness's environment
(API keys live there, and its output flows into LLM repair prompts): it gets an allow-list.
"""

from __future__ import annotations

import dataclasses
import os
import re
import resource
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

LAUNCHER_PROCESSES = 2  # launcher + namespace init, on top of the code's own processes
LAUNCHER_MEMORY_MB = 64  # their share of a memory cgroup, on top of the code's own memory

_ENV_ALLOW = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TERM")
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH", re.IGNORECASE)
# Credential stores hidden from generated code (its output flows into LLM repair prompts).
SECRET_HOME_ENTRIES = (".ssh", ".aws", ".azure", ".config/gcloud", ".config/gh", ".kube", ".docker",
                       ".gnupg", ".netrc", ".git-credentials", ".pypirc", ".npmrc")

# stderr fingerprints of resource exhaustion, only consulted when the run failed.
MEMORY_ERR = re.compile(r"MemoryError|Cannot allocate memory|std::bad_alloc|out of memory|Unable to allocate",
                        re.IGNORECASE)
FSIZE_ERR = re.compile(r"File too large|\[Errno 27\]|File size limit exceeded")  # last: a shell's report
_CPU_ERR = re.compile(r"CPU time limit exceeded")  # a shell reporting its child's SIGXCPU
_FORK_ERR = re.compile(r"BlockingIOError|Resource temporarily unavailable|can't start new thread")


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 60.0  # wall clock; process group (and cgroup) killed at expiry
    cpu_s: int = 120  # RLIMIT_CPU (SIGXCPU, then SIGKILL one second later)
    memory_mb: int = 4096  # RLIMIT_AS of each process and, with a memory cgroup, all of them together
    file_size_mb: int = 256  # RLIMIT_FSIZE
    processes: int = 64  # pids cgroup pids.max when available, else RLIMIT_NPROC (non-root)
    output_bytes: int = 64_000  # stdout and stderr each captured up to this, rest dropped
    network: bool = False  # False: run in a fresh network namespace when the OS permits

    def replace(self, **changes) -> "Limits":
        """``dataclasses.replace`` that ignores ``None`` values (handy for optional overrides)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def scrubbed_env(workdir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for generated code: an allow-list, never the harness's (API keys live there).
    Programs start without ``python -E``: every ``PYTHON*`` variable they see is set here (or by the
    case's ``env_extra``), and ``-E`` would drop the fixed hash seed."""
    workdir = Path(workdir)
    env = {k: os.environ[k] for k in _ENV_ALLOW if k in os.environ}
    env.setdefault("PATH", os.defpath)
    env.update({
        "HOME": str(workdir),
        "TMPDIR": str(workdir / ".tmp"),
        "PYTHONDONTWRITEBYTECODE": "1",
        # A fixed seed: the order of a printed set of strings (in an error message, say) is then the
        # same when a run is recorded and when it is replayed, and so is the repair prompt it feeds.
        "PYTHONHASHSEED": "0",
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


def rlimits_for(lim: Limits, nproc: bool) -> dict[str, list[int]]:
    """The launcher's rlimits for ``lim`` (never above our own hard limits); RLIMIT_NPROC only
    when ``nproc`` (no pids cgroup, and not root: it does not apply to uid 0)."""
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
        limits["RLIMIT_NPROC"] = cap("RLIMIT_NPROC", lim.processes + LAUNCHER_PROCESSES)
    return limits


def describe_rlimits(rlimits: dict[str, list[int]]) -> dict[str, int]:
    mb = 2**20
    out = {"cpu_s": rlimits["RLIMIT_CPU"][0], "memory_mb": rlimits["RLIMIT_AS"][0] // mb,
           "file_size_mb": rlimits["RLIMIT_FSIZE"][0] // mb, "core": rlimits["RLIMIT_CORE"][0]}
    if "RLIMIT_NPROC" in rlimits:
        out["nproc"] = rlimits["RLIMIT_NPROC"][0]
    return out


def signal_limit(lim: Limits, sig: int | None, timed_out: bool, cpu_used: float | None) -> str | None:
    """The limit the signal that ended a run names: SIGXCPU (or a SIGKILL once the CPU budget was
    spent) is "cpu", SIGXFSZ "file_size" (local and remote runs alike)."""
    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and not timed_out and cpu_used is not None
                                 and cpu_used >= lim.cpu_s):
        return "cpu"
    if sig == signal.SIGXFSZ:
        return "file_size"
    return None


def stderr_limit(stderr: str) -> str | None:
    """The limit a failed run's stderr reports: Python's MemoryError is "memory", a too-large file "file_size"."""
    if MEMORY_ERR.search(stderr):
        return "memory"
    if FSIZE_ERR.search(stderr):
        return "file_size"
    return None


def limit_hit(lim: Limits, sig: int | None, returncode: int | None, timed_out: bool, stderr: str,
              cpu_used: float | None, limit_events: int, oom_kills: int = 0,
              memory_cgroup: bool = False) -> str | None:
    """Which limit a local run hit ("cpu", "memory", "file_size", "processes"), if any.

    ``limit_events``: forks the pids cgroup refused; ``oom_kills``: members the memory cgroup's
    OOM killer took. With a memory cgroup (``memory_cgroup``) that count is the whole truth, so
    an unexplained SIGKILL is no longer taken for the kernel's OOM killer.
    """
    signalled = signal_limit(lim, sig, timed_out, cpu_used)
    if signalled:
        return signalled
    if oom_kills > 0:
        return "memory"
    if limit_events > 0:
        return "processes"
    if returncode == 0 and not sig:
        return None
    if _CPU_ERR.search(stderr):
        return "cpu"
    reported = stderr_limit(stderr)
    if reported:
        return reported
    if _FORK_ERR.search(stderr):
        return "processes"
    if sig == signal.SIGKILL and not timed_out and not memory_cgroup:
        return "memory"  # killed by nobody we know of: most likely the kernel's OOM killer
    return None
