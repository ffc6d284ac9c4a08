"""Who ran the runs: each process's host and checkout, and each xdist worker's gateway (a local
``popen`` one, or ``ssh=`` on another machine), for the report's provenance. A worker on another
machine keeps its journal and the cassettes it records in its own checkout; its entry says where."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any

WORKEROUTPUT_KEY = "autopilot_worker"  # what a worker hands back at its end (xdist's workeroutput)


def git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def this_process(root: Path, journal: Path | None) -> dict[str, Any]:
    """This process's host, checkout, commit and journal (None: it journalled nothing)."""
    return {"host": socket.gethostname(), "root": str(root), "git_commit": git_commit(root),
            "journal": str(journal) if journal else None}


def is_elsewhere(spec) -> bool:
    """Whether a gateway's worker runs outside the controller's folder (another machine, or //chdir=),
    so its journal and recorded cassettes are not in the controller's checkout."""
    return not spec.popen or bool(spec.chdir)


def gateway_entry(node, error) -> dict[str, Any]:
    """A finished (or dead) worker: its gateway and what it handed back; the ssh spec's options
    (``-i key``, ``-p port``) stay out, only its destination is named."""
    spec = node.gateway.spec
    kind = "ssh" if spec.ssh else "socket" if spec.socket else "popen"
    target = (spec.ssh or spec.socket or "").split()
    entry: dict[str, Any] = {"gateway": kind, "destination": target[-1] if target else None,
                             "chdir": spec.chdir, "python": spec.python}
    entry.update((getattr(node, "workeroutput", None) or {}).get(WORKEROUTPUT_KEY) or {})
    if error:
        entry["down"] = str(error)  # it died: its runs on the way are journalled on its host only
    return entry


def path_arguments(args: list[str], cwd: Path) -> list[str]:
    """Command-line arguments naming an existing path: xdist cannot hand them to a worker that runs
    elsewhere (it stops with "not relative to an rsync root")."""
    return [arg for arg in args if not arg.startswith("-") and (cwd / arg.split("::")[0]).exists()]


def remote_usage_error(config) -> str | None:
    """Why this controller cannot start its gateways (a path argument with a gateway elsewhere), or None."""
    if getattr(config, "workerinput", None) is not None or config.getoption("dist", "no") == "no":
        return None
    import execnet

    if not any(is_elsewhere(execnet.XSpec(tx.partition("*")[2] if "*" in tx.split("//")[0] else tx))
               for tx in config.getoption("tx") or []):
        return None
    paths = path_arguments([str(a) for a in config.invocation_params.args], Path(config.invocation_params.dir))
    if not paths:
        return None
    return (f"{paths[0]}: with a --tx gateway on another machine (ssh=, socket=, //chdir=) pass no path "
            "argument: each worker collects in its own checkout. Name the folder with -o testpaths=cases "
            "(or testpaths in the project's ini), select with -k / -m, and write path options as --opt=PATH")
