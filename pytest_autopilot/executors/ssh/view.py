"""The local sandbox's confinement for an SSH target that is this machine (the loopback board).

Through the harness's own sshd on 127.0.0.1 the program still runs on this host, as the login
user: without more it could read the checkout (reference solutions, oracles), import the harness
package and use host /tmp. For such a target (``RemoteTarget.local_view``) the remote wrapper
runs the program through the harness's stdlib-only launcher (``executors/_launcher.py``) with the
configuration ``Sandbox.prepare`` builds for a local run: the same allow-list view (pivot_root),
private /tmp, /var/tmp and /dev/shm, namespaces, pids+memory cgroup, rlimits, scrubbed
environment, PR_SET_PDEATHSIG (the launcher dies with the wrapper, the wrapper with its SSH
session, which ends with the harness's connection). The program's writable dir is
``<remote dir>/work``; the wrapper's status files stay beside it, outside the program's view.
Being on the same machine, the harness creates the run's cgroup and kills and removes it after.

A real remote board gets none of this; :data:`REMOTE_ISOLATION` says so in the record.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pytest_autopilot.executors.limits import limit_hit
from pytest_autopilot.executors.local import SCRIPT_NAME
from pytest_autopilot.executors.sandbox import LAUNCHER, Prepared, isolation_record
from pytest_autopilot.executors.ssh.target import RemoteError, RemoteTarget

WORK_DIR = "work"  # inside the remote attempt dir: the program's writable dir (and its view's)
REMOTE_ISOLATION = {
    "local_sandbox": False,
    "fs_view": "remote: not applied",
    "fs_view_reason": "a remote board: the harness cannot build its file system view there; the program sees "
                      "what the login user sees (see the README on SSH targets)",
}


class LocalView:
    """One attempt's sandbox set-up (env, cgroup, launcher config) for a target on this machine."""

    def __init__(self, sandbox, target: RemoteTarget, workspace: str, limits, marker: str):
        name, _, value = marker.partition("=")
        self.program = [target.python, "-s", SCRIPT_NAME]
        try:
            self.prep: Prepared = sandbox.prepare(Path(workspace), limits, {name: value}, self.program)
        except ValueError as exc:
            raise RemoteError("config", target.label, str(exc)) from None
        self.limits = limits
        self.counters = (0, 0)  # the cgroup's refused forks and OOM kills, read when released
        self._cgroup_alive = self.prep.cgroup
        _owned_like_workspace(self.prep.workdir / ".tmp")

    def wrapper_config(self, status_dir: str) -> dict:
        """The wrapper's config: no rlimits of its own (the launcher sets them), the run's env."""
        return {"rlimits": {}, "env": self.prep.env, "script": SCRIPT_NAME, "status_dir": status_dir,
                "launch": {"argv": [sys.executable, "-I", str(LAUNCHER)], "config": self.prep.config,
                           "program": self.program}}

    def release(self) -> None:
        """Kill whatever is left in the run's cgroup and remove it (idempotent)."""
        cgroup, self._cgroup_alive = self._cgroup_alive, None
        if cgroup is not None:
            self.counters = (cgroup.limit_events(), cgroup.oom_kills())
            cgroup.destroy()

    def isolation(self, setup: dict, cpu_used: float | None) -> dict:
        return {"local_sandbox": True, **isolation_record(self.prep, setup, cpu_used)}

    def limit_hit(self, sig, returncode, timed_out, stderr, isolation: dict) -> str | None:
        return limit_hit(self.limits, sig, returncode, timed_out, stderr, isolation.get("cpu_s_used"),
                         *self.counters, isolation["memory_cgroup"])


def _owned_like_workspace(path: Path) -> None:
    """The run's TMPDIR belongs to the login user, who may not be the harness's user."""
    try:
        st = path.parent.stat()
        if st.st_uid != os.getuid():
            os.chown(path, st.st_uid, st.st_gid)
    except OSError:
        pass
