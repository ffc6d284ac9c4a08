"""Per-run cgroups: the process limit that works for root (RLIMIT_NPROC does not apply to uid 0)
and the memory limit that bounds a run's processes together (RLIMIT_AS bounds each one alone).

Each run gets its cgroup under ``<our cgroup>/pytest-autopilot``: one directory with both
controllers on cgroup v2, or a pids and a memory directory of the same name on cgroup v1, with
``pids.max`` and ``memory.max`` (v1: ``memory.limit_in_bytes``) set. The launcher joins them
before its first fork, so every descendant is counted, bounded and can be killed by listing the
cgroup. A controller without a writable hierarchy is done without (``RLIMIT_NPROC`` for non-root,
``RLIMIT_AS`` alone for memory) and ``isolation`` says so. Cgroup names start with their
creator's ``owner_tag`` (PID namespace, pid, start time), so ``remove_orphaned_cgroups`` can
kill and remove those of a harness that died.
"""

from __future__ import annotations

import functools
import os
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path

ROOT_NAME = "pytest-autopilot"
CONTROLLERS = ("pids", "memory")
_PROBE_VALUE = {"pids": 1, "memory": 64 * 2**20}


def _pid_namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "0"


def _stat_fields(pid: int | str) -> list[str] | None:
    """/proc/<pid>/stat after the command name: state, ppid, ..., starttime at index 19."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def owner_tag(pid: int | None = None) -> str:
    """``<pid namespace>.<pid>.<start time>``: names what a process created, for ``owner_gone``."""
    pid = os.getpid() if pid is None else pid
    fields = _stat_fields(pid)
    return f"{_pid_namespace()}.{pid}" + (f".{fields[19]}" if fields else "")


def owner_gone(tag: str) -> bool:
    """Has the process an ``owner_tag`` names exited (a zombie counts)? False when that cannot be
    told: another PID namespace's tag, or not a tag at all."""
    parts = tag.split(".")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts) or parts[0] != _pid_namespace():
        return False
    fields = _stat_fields(parts[1])
    if fields is None or fields[0] in ("Z", "X"):
        return True
    return len(parts) == 3 and fields[19] != parts[2]  # the pid now belongs to another process


def _hierarchies() -> list[tuple[str, Path]]:
    """(controller, ``<our cgroup>/pytest-autopilot``) for each mounted hierarchy that has one of
    ``CONTROLLERS``; controller "" is cgroup v2 (any controller it can enable)."""
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
        keys = [""] if fstype == "cgroup2" else \
            [c for c in fields[sep + 3].split(",") if c in CONTROLLERS] if fstype == "cgroup" else []
        for key in keys:
            if key in own:
                rel = own[key][len(root):] if root != "/" and own[key].startswith(root) else own[key]
                found.append((key, Path(point + rel.rstrip("/")) / ROOT_NAME))
    return found


def _write_limit(cg: Path, controller: str, value: int) -> None:
    if controller == "pids":
        (cg / "pids.max").write_text(str(value))
        return
    v2 = (cg / "memory.max").exists()
    (cg / ("memory.max" if v2 else "memory.limit_in_bytes")).write_text(str(value))
    try:  # swap must not extend the limit (v1: memory+swap, at least the memory limit)
        (cg / ("memory.swap.max" if v2 else "memory.memsw.limit_in_bytes")).write_text("0" if v2 else str(value))
    except OSError:
        pass  # no swap accounting: nothing to extend it with either


def _usable(parent: Path, controller: str, v2: bool) -> bool:
    try:
        parent.mkdir(exist_ok=True)
        if v2:  # our cgroup enables it for pytest-autopilot, which enables it for the runs
            for directory in (parent.parent, parent):
                if controller not in (directory / "cgroup.subtree_control").read_text().split():
                    try:
                        (directory / "cgroup.subtree_control").write_text(f"+{controller}")
                    except OSError:
                        pass  # e.g. our own cgroup holds processes: the probe below tells
        probe = parent / f"probe-{os.getpid()}-{secrets.token_hex(4)}"
        probe.mkdir()
        try:
            _write_limit(probe, controller, _PROBE_VALUE[controller])
            return True
        finally:
            probe.rmdir()
    except OSError:
        return False


def _find_parents() -> dict[str, Path]:
    """Controller -> the directory runs get their cgroups in (v2 preferred, else v1)."""
    hierarchies = _hierarchies()
    parents: dict[str, Path] = {}
    for controller in CONTROLLERS:
        for key, parent in sorted(hierarchies, key=lambda h: h[0] != ""):
            if key in ("", controller) and _usable(parent, controller, v2=key == ""):
                parents[controller] = parent
                break
    return parents


@functools.cache  # a fact of the machine, probed once per process
def run_cgroup_parents() -> dict[str, Path]:
    """Controller -> directory of the run cgroups (empty: none)."""
    try:
        parents = _find_parents()
    except (OSError, ValueError):
        parents = {}
    remove_orphaned_cgroups()
    return parents


@dataclass(frozen=True)
class RunCgroup:
    """One run's cgroup: the same directory for both controllers (v2) or one per controller (v1)."""

    pids: Path | None
    memory: Path | None

    @property
    def dirs(self) -> list[Path]:
        return list(dict.fromkeys(d for d in (self.pids, self.memory) if d is not None))

    def config(self) -> dict[str, str | None]:
        """What the launcher joins."""
        return {"pids": self.pids and str(self.pids), "memory": self.memory and str(self.memory)}

    def limit_events(self) -> int:
        """How often a fork was refused because of pids.max."""
        return _event_count(self.pids, ("pids.events",), "max")

    def oom_kills(self) -> int:
        """How many members the kernel killed for exceeding the memory limit."""
        return _event_count(self.memory, ("memory.events", "memory.oom_control"), "oom_kill")

    def freeze_forks(self) -> None:
        """pids.max = 0: no member can fork any more (the first step of killing them all)."""
        if self.pids is not None:
            freeze_forks(self.pids)

    def destroy(self) -> None:
        self.freeze_forks()
        for cg in self.dirs:
            destroy_cgroup(cg)


def _event_count(cg: Path | None, files: tuple[str, ...], key: str) -> int:
    for name in files if cg is not None else ():
        try:
            for line in (cg / name).read_text().splitlines():
                field, _, value = line.partition(" ")
                if field == key:
                    return int(value)
        except (OSError, ValueError):
            continue
    return 0


def create_run_cgroup(pids_max: int, memory_max: int) -> RunCgroup | None:
    """A fresh cgroup allowing ``pids_max`` processes and ``memory_max`` bytes in total, with the
    controllers this machine offers; None where there is none to be had."""
    parents = run_cgroup_parents()
    # <owner tag>-...: lets a later harness recognise cgroups whose creator died.
    name = f"{owner_tag()}-{secrets.token_hex(8)}"  # random: no per-process counter to keep
    made: dict[str, Path] = {}
    for controller, parent in parents.items():
        cg = parent / name
        try:
            if cg not in made.values():
                cg.mkdir()
            _write_limit(cg, controller, pids_max if controller == "pids" else memory_max)
            made[controller] = cg
        except OSError:
            if cg not in made.values():
                destroy_cgroup(cg)
    return RunCgroup(made.get("pids"), made.get("memory")) if made else None


def freeze_forks(cg: Path) -> None:
    try:
        (cg / "pids.max").write_text("0")
    except OSError:
        pass


def destroy_cgroup(cg: Path) -> None:
    """SIGKILL every member (forks are blocked first so the list converges), then remove it."""
    freeze_forks(cg)
    try:
        (cg / "cgroup.kill").write_text("1")  # cgroup v2, Linux 5.14+: all at once
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


def remove_orphaned_cgroups() -> list[Path]:
    """Kill the members of, and remove, every run cgroup whose creator has exited (a crashed
    harness or xdist worker); returns what was removed."""
    removed = []
    try:
        hierarchies = _hierarchies()
    except (OSError, ValueError):
        return removed
    for _key, parent in dict.fromkeys(hierarchies):
        try:
            entries = [p for p in parent.iterdir() if p.is_dir()]
        except OSError:
            continue
        for cg in entries:
            if owner_gone(cg.name.partition("-")[0]):
                destroy_cgroup(cg)
                removed.append(cg)
    return removed
