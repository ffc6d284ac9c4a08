"""Scans of /proc that tests use to prove no process of a run survives it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


def _live(matches: Callable[[str], bool], exclude: tuple[int, ...]) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in (os.getpid(), *exclude):
            try:
                if matches(entry):
                    found.append(int(entry))
            except OSError:  # gone meanwhile, or not ours to read
                pass
    return found


def processes_with(marker: str, exclude: tuple[int, ...] = ()) -> list[int]:
    """Live processes whose command line contains ``marker`` (zombies have an empty one)."""
    return _live(lambda pid: marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes(), exclude)


def processes_under(folder: Path) -> list[int]:
    """Live processes whose working directory lies under ``folder``."""
    return _live(lambda pid: os.readlink(f"/proc/{pid}/cwd").startswith(str(folder)), ())


def tree_rss_kb(root: int) -> dict[int, int]:
    """Resident memory (kB) of ``root`` and every live descendant, by pid."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])  # the command may hold spaces and ")"
    tree, grew = {root}, True
    while grew:
        found = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= found
        grew = bool(found)
    rss = {}
    for pid in tree:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        rss[pid] = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return rss
