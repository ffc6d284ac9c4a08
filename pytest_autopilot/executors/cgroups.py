"""pids cgroups: the only process limit that works for root (RLIMIT_NPROC does not apply to uid 0).

Each run gets its own cgroup under ``<our cgroup>/pytest-autopilot`` (v1 pids controller or v2),
with ``pids.max`` set; the launcher joins it before its first fork, so every descendant is
counted and can be killed by listing the cgroup. Where no writable pids cgroup exists, runs go
without one (``RLIMIT_NPROC`` for non-root) and ``isolation["pids_cgroup"]`` says so.
Cgroup names carry the creator's PID namespace and pid, so a later harness can remove the
cgroups of one that crashed.
"""

from __future__ import annotations

import itertools
import os
import secrets
import signal
import time
from pathlib import Path

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
                destroy_cgroup(stale)
        return parent
    return None


def create_pids_cgroup(pids_max: int) -> Path | None:
    """A fresh cgroup allowing ``pids_max`` processes, or None where there is none to be had."""
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
        destroy_cgroup(cg)
        return None


def cgroup_limit_events(cg: Path | None) -> int:
    """How often a fork in the cgroup was refused because of pids.max."""
    try:
        for line in (cg / "pids.events").read_text().splitlines():
            name, value = line.split()
            if name == "max":
                return int(value)
    except (OSError, TypeError, ValueError):
        pass
    return 0


def freeze_forks(cg: Path) -> None:
    """pids.max = 0: no member can fork any more (the first step of killing them all)."""
    try:
        (cg / "pids.max").write_text("0")
    except OSError:
        pass


def destroy_cgroup(cg: Path) -> None:
    """SIGKILL every member (forks are blocked first so the list converges), then remove it."""
    freeze_forks(cg)
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
