"""Spreading a sweep: ``--autopilot-shard I/N`` for runners that cannot talk to each other, and the
xdist hooks that hand the run to workers (local or behind SSH gateways) and keep what each said:
each xdist worker's gateway (a local ``popen`` one, or ``ssh=`` on another machine) for the
report's provenance. A worker on another machine keeps its journal and the cassettes it records in
its own checkout; its entry says where."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from pytest_autopilot.llm.local_provider import WORKERINPUT_KEY as LOCAL_WORKERINPUT_KEY


def parse_shard(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    try:
        index, count = (int(part) for part in value.split("/"))
    except ValueError:
        index = count = 0
    if not 1 <= index <= count:
        raise pytest.UsageError(f"--autopilot-shard {value!r}: expected I/N with 1 <= I <= N, e.g. 2/4")
    return index, count


WORKEROUTPUT_KEY = "autopilot_worker"  # what a worker hands back at its end (xdist's workeroutput)
RECORDED_ONLY_KEY = "autopilot_recorded_only"  # a worker's line on what --autopilot-recorded-only deselected
SESSION_TAG_KEY = "autopilot_session"  # the controller's owner_tag: its workers here share its warm servers


def recorded_only_line(kept: int, unrecorded: list[str], explicit_runs: int | None) -> str:
    """One line: what --autopilot-recorded-only kept and deselected, and why."""
    per_case: dict[str, int] = {}
    for nodeid in unrecorded:
        case = nodeid.split("::")[0]
        per_case[case] = per_case.get(case, 0) + 1
    shown = ", ".join(f"{case} ({n})" for case, n in sorted(per_case.items())[:5])
    more = f", and {len(per_case) - 5} more case(s)" if len(per_case) > 5 else ""
    repetitions = (f"repetitions r01-r{explicit_runs:02d} as --autopilot-runs asks" if explicit_runs is not None
                   else "every recorded repetition of each case")
    return (f"--autopilot-recorded-only: kept {kept} run(s) with a cassette ({repetitions}); "
            + (f"deselected {len(unrecorded)} with no cassette: {shown}{more}" if unrecorded else "deselected none"))


def shard_of(nodeid: str, count: int) -> int:
    """1-based shard of an item: a hash of its id, so it does not depend on what else is collected."""
    return int(hashlib.sha256(nodeid.encode()).hexdigest()[:12], 16) % count + 1


class XdistHooks:
    """Registered only when xdist is active: hands the run id, the session (and on a resume what is
    done) to every worker, the one channel to them, and keeps what each worker said at its end."""

    def __init__(self, autopilot):  # the session.AutopilotSession
        self.autopilot = autopilot
        if why := remote_usage_error(autopilot.config):
            raise pytest.UsageError(why)
        resuming = autopilot.is_controller and autopilot.settings.get("resume")
        self.done = sorted(autopilot.finished_in_journal()) if resuming else None

    def pytest_configure_node(self, node):
        node.workerinput["autopilot_run_id"] = self.autopilot.run_id
        if not is_elsewhere(node.gateway.spec):  # a worker elsewhere has its own machine's servers
            from pytest_autopilot.executors.cgroups import owner_tag

            node.workerinput[SESSION_TAG_KEY] = owner_tag()
        if self.done is not None:  # from the controller's journal: a worker elsewhere has none
            node.workerinput["autopilot_done"] = self.done
        self.autopilot.start_local_servers()
        node.workerinput[LOCAL_WORKERINPUT_KEY] = dict(self.autopilot.local.urls)

    def pytest_testnodedown(self, node, error):
        self.autopilot.worker_hosts[node.gateway.id] = gateway_entry(node, error)
        said = (getattr(node, "workeroutput", None) or {}).get(RECORDED_ONLY_KEY)
        if said:  # every worker collects the same items: any one's line is the sweep's
            self.autopilot.recorded_only_line = said

    def pytest_xdist_node_collection_finished(self, node, ids):
        if self.autopilot.progress is not None:  # the controller collects nothing itself: the workers say the total
            self.autopilot.progress.tally.total = len(ids)


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
