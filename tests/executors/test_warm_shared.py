"""The xdist workers of a session share one warm fork server, with every attempt as isolated as before.

Each test runs a session of a probe case through the plugin (``pytester``, a subprocess) on a
warm executor registered from the project's conftest, like a user's, preloading only ``json``:
what is shared and restarted does not depend on TensorFlow (tests/executors/test_warm.py and the
benchmarks cover that), and a light server starts in milliseconds.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from checkout_view import checkout_write_blocked
from proc_scan import processes_with

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox relies on Linux namespaces/cgroups")

CASE = """\
stage: DP
description: probe the sandbox
executor: warm-light
steps:
  - name: code
    prompt: probe/probe.j2
    oracle: {name: probe}
solutions:
  reference: {code: probe/solutions/reference.py}
standin:
  - {code: [reference]}
repair: {max_attempts: 1}
"""

# The oracle runs in the worker: it can kill the server (once, the first attempt to get there)
# and its own worker (once, an attempt on the restarted server that did not start it).
CONFTEST = """\
import json, os, signal
from pytest_autopilot.core.records import Check, Verdict
from pytest_autopilot.executors.warm import WarmPythonExecutor
from pytest_autopilot.executors.warm_shared import SESSION_LINGER_S

def pytest_autopilot_register(registry):  # as warm_executor does, with a light preload
    registry.executor("warm-light", lambda ctx: ctx.shared.get(
        "warm-light", lambda: WarmPythonExecutor(ctx.sandbox, preload=("json",), linger_s=SESSION_LINGER_S)))
    registry.oracle("probe", probe)

def once(name):
    path = os.environ.get(name)
    if not path:
        return False
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False

def probe(ctx):
    iso = ctx.execution.isolation
    if once("KILL_SERVER"):
        os.kill(iso["server_pid"], signal.SIGKILL)
    if iso["server_restarts"] == 1 and "server_start_s" not in iso and once("KILL_WORKER"):
        os.kill(os.getpid(), signal.SIGKILL)
    return Verdict.from_checks("probe", [Check("ran", ctx.execution.returncode == 0, ctx.execution.stderr[-500:])])
"""

# What an attempt can reach: the other attempts' work dirs are siblings of its own in the base
# dir, next to the session's warm folder (the server's socket) and the checkout.
PROBE = """\
import json, os, socket
base, repo = {base!r}, {repo!r}
seen = {{"cwd": os.getcwd(), "pid": os.getpid(), "parent": sorted(os.listdir("..")),
        "warm": os.path.exists(os.path.join(base, ".warm")),
        "repo": os.path.exists(os.path.join(repo, "pyproject.toml"))}}
try:
    import pytest_autopilot
    seen["package"] = "imported"
except ImportError as exc:
    seen["package"] = type(exc).__name__
try:
    open(os.path.join(repo, "pwned-by-warm-shared.txt"), "w").write("pwned")
    seen["repo_write"] = "written"
except OSError as exc:
    seen["repo_write"] = exc.strerror
print(json.dumps(seen))
"""


@pytest.fixture
def project(pytester, tmp_path_factory, monkeypatch):
    """A project with the probe case; the sessions' sandbox base dir under a TMPDIR of its own."""
    tmp = tmp_path_factory.mktemp("tmp")
    monkeypatch.setenv("TMPDIR", str(tmp))
    for name in [k for k in os.environ if k.startswith("PYTEST_XDIST")]:
        monkeypatch.delenv(name)  # the inner run is a session of its own, whatever runs this one
    base = tmp / f"pytest-autopilot-{os.getuid()}"
    root = pytester.path
    (root / "cases/probe/solutions").mkdir(parents=True)
    (root / "prompts/probe").mkdir(parents=True)
    (root / "prompts/common").mkdir(parents=True)
    (root / "cases/probe.yaml").write_text(CASE)
    (root / "cases/probe/solutions/reference.py").write_text(PROBE.format(base=str(base), repo=str(REPO)))
    (root / "prompts/probe/probe.j2").write_text("Probe the sandbox. {{ description }}\n")
    (root / "prompts/common/repair.j2").write_text((REPO / "pytest_autopilot/data/prompts/common/repair.j2").read_text())
    (root / "conftest.py").write_text(CONFTEST)
    pytester.makeini("[pytest]\nautopilot_cases_dir = cases\n")
    return root, base


def run_session(pytester, root: Path, base: Path, *args: str) -> list[dict]:
    """Run the probe case; afterwards nothing of the session may be left; returns its runs."""
    pytester.runpytest_subprocess("cases", "--record-mode", "once", "--autopilot-run-id", "shared", *args)
    runs = json.loads((root / "reports/shared/results.json").read_text())["runs"]
    assert processes_with(str(base)) == []  # the server (and its children) carry the base dir in argv
    left = sorted(p.name for p in base.iterdir()) if base.is_dir() else []
    assert [name for name in left if not name.startswith(".")] == [], left  # attempt and server dirs
    assert not list((base / ".owners").iterdir()) and not list((base / ".warm").iterdir())
    assert not (REPO / "pwned-by-warm-shared.txt").exists()
    return runs


def executions(runs: list[dict]) -> list[dict]:
    return [a["execution"] for r in runs for a in r["attempts"] if a.get("execution")]


def assert_isolated(execution: dict) -> None:
    """What tests/executors/test_warm.py checks of one attempt, seen from inside it."""
    iso, seen = execution["isolation"], json.loads(execution["stdout"])
    assert iso["executor"] == "warm-fork" and iso["preloaded"] == ["json"], iso
    assert iso["fs_view"] == "allow-list" and iso["capabilities_dropped"] and iso["no_new_privs"], iso
    assert all(iso[ns] for ns in ("network_namespace", "pid_namespace", "mount_namespace", "ipc_namespace")), iso
    assert seen["pid"] < 10  # its own PID namespace
    # its own work dir and nothing else of the base dir: no sibling attempt, no socket, no checkout
    assert seen["parent"] == [Path(seen["cwd"]).name], seen
    assert not seen["warm"] and not seen["repo"] and seen["package"] == "ModuleNotFoundError", seen
    assert checkout_write_blocked(seen["repo_write"]), seen


def test_workers_share_one_server_and_attempts_stay_isolated(project, pytester):
    root, base = project
    runs = run_session(pytester, root, base, "-n", "4", "--autopilot-runs", "8")
    assert len(runs) == 8 and all(r["status"] == "success" for r in runs), [(r["status"], r["error"]) for r in runs]
    assert len({r["worker"] for r in runs}) == 4  # xdist hands each of the 4 workers 2 of the 8
    done = executions(runs)
    assert len(done) == 8
    for execution in done:
        assert_isolated(execution)
    assert len({e["isolation"]["server_pid"] for e in done}) == 1  # one server served all workers
    assert {e["isolation"]["server_restarts"] for e in done} == {0}
    assert sum("server_start_s" in e["isolation"] for e in done) == 1  # started once, by one attempt
    assert len({json.loads(e["stdout"])["cwd"] for e in done}) == 8  # a work dir of its own each


def test_a_killed_server_is_restarted_once_and_a_killed_worker_leaves_nothing(project, pytester, tmp_path,
                                                                             monkeypatch):
    root, base = project
    monkeypatch.setenv("KILL_SERVER", str(tmp_path / "server-killed"))
    monkeypatch.setenv("KILL_WORKER", str(tmp_path / "worker-killed"))
    runs = run_session(pytester, root, base, "-n", "2", "--autopilot-runs", "6")
    assert (tmp_path / "server-killed").exists() and (tmp_path / "worker-killed").exists()
    by_status = sorted(r["status"] for r in runs)
    assert by_status == ["crashed"] + ["success"] * 5, [(r["status"], r["error"]) for r in runs]
    done = executions([r for r in runs if r["status"] == "success"])
    for execution in done:
        assert_isolated(execution)
    restarts = [e["isolation"]["server_restarts"] for e in done]
    assert set(restarts) <= {0, 1} and 1 in restarts, restarts  # one restart for the session, not per worker
    # A server that lost its last user to the worker's death stopped, and the next start is no
    # restart: so there were two or three servers, depending on who was connected then.
    assert 2 <= len({e["isolation"]["server_pid"] for e in done}) <= 3
