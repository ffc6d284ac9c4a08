"""Hostile generated programs against the real sandbox (real processes, no mocks): each one is
contained, gets a sensible result and leaves nothing behind -- no process, no cgroup, no work
dir. Deadlines come from the configured limits and are generous: this runs on loaded machines."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from checkout_view import checkout_write_blocked
from proc_scan import processes_with

from pytest_autopilot.executors.cgroups import owner_tag, run_cgroup_parents
from pytest_autopilot.executors.limits import Limits
from pytest_autopilot.executors.sandbox import LAUNCHER, OWNERS, Sandbox, remove_leftovers

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "cases" / "dp" / "clean_split" / "solutions" / "reference.py"
LIMITS = Limits(timeout_s=30, cpu_s=30, memory_mb=2048, processes=32, output_bytes=10_000)
SETTLE_S = 30.0  # how long a killed process may take to disappear on a loaded machine

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox relies on Linux namespaces/cgroups")


@pytest.fixture
def sandbox(tmp_path):
    return Sandbox(LIMITS, base_dir=tmp_path / "sandbox")


@pytest.fixture
def marker():
    return f"hostile-{uuid.uuid4().hex}"




def our_cgroups(pid: int | None = None) -> list[Path]:
    tag = owner_tag(pid) + "-"
    return [cg for parent in set(run_cgroup_parents().values()) if parent.is_dir()
            for cg in parent.iterdir() if cg.name.startswith(tag)]


def eventually(condition, what: str, timeout: float = SETTLE_S):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"still not true after {timeout:g} s: {what}"
        time.sleep(0.05)


def assert_nothing_left(sandbox: Sandbox, workdir: Path, marker: str) -> None:
    eventually(lambda: processes_with(marker) == [], f"processes of {marker} gone: {processes_with(marker)}")
    assert our_cgroups() == []
    assert not workdir.exists() and not (sandbox.base_dir / OWNERS / workdir.name).exists()


def run(sandbox: Sandbox, code: str, marker: str, *args: str, limits: Limits | None = None):
    """Run ``code`` as main.py with ``marker`` as its first argument; returns (result, files the
    run left in its work dir) after checking that nothing of it survived."""
    workdir = sandbox.new_workdir()
    try:
        (workdir / "main.py").write_text(textwrap.dedent(code))
        result = sandbox.run_python("main.py", workdir, args=[marker, *args], limits=limits)
        files = sorted(p.relative_to(workdir).as_posix() for p in workdir.rglob("*") if p.is_file())
    finally:
        sandbox.cleanup(workdir)
    assert_nothing_left(sandbox, workdir, marker)
    return result, files


def require_allow_list(result) -> None:
    if result.isolation["fs_view"] != "allow-list":
        pytest.skip(f"no allow-list view here: {result.isolation['fs_view_reason']}")


# --- what the program can see -----------------------------------------------------------------

def test_reference_solution_and_harness_are_out_of_reach(sandbox, marker):
    assert REFERENCE.is_file()
    result, _ = run(sandbox, """
        import importlib.util, json, os, sys
        from pathlib import Path
        rel, known = "cases/dp/clean_split/solutions/reference.py", sys.argv[2]
        starts = [Path(sys.executable), Path(sys.executable).resolve(), Path(__file__).resolve(), Path.cwd()]
        found = sorted({str(p / rel) for s in starts for p in s.parents if (p / rel).exists()})
        found += [known] if os.path.exists(known) else []
        outcome = {"found": found}
        try:  # the three-line exploit: the checkout through sys.executable, exec its reference
            root = Path(sys.executable).parents[2]
            exec(compile(open(root / rel).read(), "reference", "exec"), {"__name__": "not_main"})
            outcome["exec"] = "ran"
        except OSError as exc:
            outcome["exec"] = type(exc).__name__
        try:
            import pytest_autopilot
            outcome["import"] = "imported " + str(pytest_autopilot.__file__)
        except ImportError as exc:
            outcome["import"] = type(exc).__name__
        outcome["spec"] = repr(importlib.util.find_spec("pytest_autopilot"))
        outcome["on_path"] = [p for p in sys.path if os.path.isdir(os.path.join(p, "pytest_autopilot"))]
        print(json.dumps(outcome))
    """, marker, str(REFERENCE))
    require_allow_list(result)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome == {"found": [], "exec": "FileNotFoundError", "import": "ModuleNotFoundError",
                       "spec": "None", "on_path": []}
    assert result.stderr == ""  # the hidden editable-install hook does not make site complain


def test_the_view_holds_only_what_the_task_needs(sandbox, marker, tmp_path):
    result, _ = run(sandbox, """
        import json, os, sys
        repo, home, base = sys.argv[2:5]
        def listing(path):
            try:
                return sorted(os.listdir(path))
            except OSError as exc:
                return type(exc).__name__
        print(json.dumps({
            "exists": {p: os.path.exists(p) for p in (repo + "/.git", repo + "/cases", repo + "/pytest_autopilot",
                                                      "/run", "/var/run", "/home", base, "/etc/passwd", "/usr/bin")},
            "home": listing(home), "tmp": listing("/tmp"), "var": listing("/var"), "dev": listing("/dev"),
            "shadow": open("/etc/shadow").read() if os.path.exists("/etc/shadow") else None,
            "pid1": os.path.exists("/proc/1"), "cwd": os.getcwd(), "stdlib": os.path.exists(os.__file__),
        }))
    """, marker, str(REPO), str(Path.home()), str(sandbox.base_dir))
    require_allow_list(result)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["exists"] == {str(REPO / ".git"): False, str(REPO / "cases"): False,
                              str(REPO / "pytest_autopilot"): False, "/run": False, "/var/run": False,
                              "/home": False, str(sandbox.base_dir): True,  # only as the way to the work dir
                              "/etc/passwd": True, "/usr/bin": True}
    interpreter_parts = {Path(p).relative_to(Path.home()).parts[0] for p in result.isolation["readonly_paths"]
                         if Path(p).is_relative_to(Path.home())}
    assert set(seen["home"]) <= interpreter_parts  # the home holds only the interpreter bound inside it
    # /tmp is private: it shows only the way to the work dir and to trees bound read-only (a checkout's venv
    # under /tmp, as in a fresh clone there)
    bound_in_tmp = {Path(p).relative_to("/tmp").parts[0] for p in [*result.isolation["readonly_paths"], sandbox.base_dir]
                    if Path(p).is_relative_to("/tmp")}
    assert set(seen["tmp"]) == bound_in_tmp
    assert seen["var"] == ["tmp"] and seen["shadow"] in (None, "")
    assert {"null", "zero", "urandom", "shm", "pts"} <= set(seen["dev"]) and "sda" not in seen["dev"]
    assert seen["pid1"] and seen["stdlib"] and seen["cwd"].startswith(str(sandbox.base_dir))


def test_writes_to_the_host_land_nowhere(sandbox, marker, tmp_path):
    name = f"pwned-{uuid.uuid4().hex}"
    targets = [Path("/tmp") / name, Path("/var/tmp") / name, Path("/dev/shm") / name, Path.home() / name,
               REPO / name, REPO / "cases" / name, sandbox.base_dir / name, tmp_path / name]
    try:
        result, files = run(sandbox, """
            import json, sys
            outcome = {}
            for path in sys.argv[2:]:
                try:
                    with open(path, "w") as f:
                        f.write("pwned")
                    outcome[path] = "written"
                except OSError as exc:
                    outcome[path] = exc.strerror
            print(json.dumps(outcome))
        """, marker, *map(str, targets))
        leaked = [str(p) for p in targets if p.exists()]
    finally:
        for path in targets:
            path.unlink(missing_ok=True)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert leaked == [], outcome
    assert outcome[f"/tmp/{name}"] == outcome[f"/var/tmp/{name}"] == "written"  # the run's private ones
    assert checkout_write_blocked(outcome[str(REPO / name)]) and checkout_write_blocked(outcome[str(REPO / "cases" / name)])
    assert files == ["main.py"]


def test_host_unix_sockets_are_unreachable(sandbox, marker):
    path = f"/tmp/autopilot-{uuid.uuid4().hex[:12]}.sock"
    abstract = f"\0autopilot-{uuid.uuid4().hex}"
    listeners = []
    try:
        for address in (path, abstract):
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(address)
            listener.listen()
            listeners.append(listener)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:  # the host itself gets through
                probe.connect(address)
        result, _ = run(sandbox, """
            import json, socket, sys
            outcome = {}
            for name, address in (("path", sys.argv[2]), ("abstract", "\\0" + sys.argv[3])):
                try:
                    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                        s.settimeout(5)
                        s.connect(address)
                    outcome[name] = "connected"
                except OSError as exc:
                    outcome[name] = type(exc).__name__
            print(json.dumps(outcome))
        """, marker, path, abstract[1:])
    finally:
        for listener in listeners:
            listener.close()
        Path(path).unlink(missing_ok=True)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    require_allow_list(result)
    assert outcome["path"] == "FileNotFoundError"  # the host's /tmp is not there at all
    if not result.isolation["network_namespace"]:
        pytest.skip("no network namespace: abstract sockets are shared with the host")
    assert outcome["abstract"] == "ConnectionRefusedError"  # abstract sockets live per network namespace


# --- resources and processes ------------------------------------------------------------------

def test_fork_bomb(sandbox, marker):
    limits = LIMITS.replace(timeout_s=5)
    result, _ = run(sandbox, """
        import os, time
        while True:
            try:
                os.fork()
            except OSError:
                time.sleep(0.001)
    """, marker, limits=limits)
    if not (result.isolation["pids_cgroup"] or result.isolation["rlimit_nproc"]):
        pytest.skip("neither a pids cgroup nor RLIMIT_NPROC here")
    assert result.limit_hit == "processes", (result.isolation, result.stderr[-500:])
    assert subprocess.run(["true"]).returncode == 0


def test_four_gigabyte_processes_share_a_two_gigabyte_limit(sandbox, marker):
    result, _ = run(sandbox, """
        import json, os, select, signal, time
        ready_r, ready_w = os.pipe()
        children = []
        for _ in range(4):
            pid = os.fork()
            if pid == 0:
                os.close(ready_r)
                block = b"x" * 2**30  # 1 GB, every page written
                os.write(ready_w, b"1")
                time.sleep(600)  # hold it until the parent has seen everyone
                os._exit(0)
            children.append(pid)
        os.close(ready_w)
        ready, status = 0, {}
        while ready + len(status) < 4:
            if select.select([ready_r], [], [], 0.1)[0]:
                ready += len(os.read(ready_r, 16))
            for pid in children:
                if pid not in status and os.waitpid(pid, os.WNOHANG)[0]:
                    status[pid] = "killed"
        for pid in children:
            if pid not in status:
                os.kill(pid, signal.SIGKILL)
        print(json.dumps({"ready": ready, "killed": len(status)}))
        raise SystemExit(3 if status else 0)
    """, marker, limits=LIMITS.replace(timeout_s=120, cpu_s=120))
    if result.isolation["memory_limit"] != "cgroup":
        pytest.skip(f"no memory cgroup here: {result.isolation['launcher_errors']}")
    outcome = json.loads(result.stdout)
    assert outcome["killed"] >= 2 and result.returncode == 3, outcome  # at most two fit in 2 GB
    assert result.limit_hit == "memory" and not result.timed_out


def test_sleeping_through_sigterm_dies_at_the_timeout(sandbox, marker):
    limits = LIMITS.replace(timeout_s=2)
    result, _ = run(sandbox, """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("sleeping", flush=True)
        time.sleep(600)
    """, marker, limits=limits)
    assert result.timed_out and result.returncode is None and result.signal == signal.SIGKILL
    assert result.stdout == "sleeping\n" and limits.timeout_s <= result.duration_s < limits.timeout_s + 60


def test_double_forked_orphan_dies_with_the_run(sandbox, marker):
    result, _ = run(sandbox, """
        import os, sys, time
        if os.fork() == 0:
            if os.fork() == 0:
                os.setsid()
                os.execlp("sleep", "sleep", "600", sys.argv[1])
            os._exit(0)
        os.wait()
        print("parent done")
    """, marker)
    assert result.returncode == 0 and result.stdout == "parent done\n" and not result.timed_out


def test_stdout_flood_is_capped_and_stopped(sandbox, marker):
    limits = LIMITS.replace(timeout_s=3)
    result, _ = run(sandbox, """
        import sys
        while True:
            sys.stdout.write("y" * 65536)
    """, marker, limits=limits)
    assert result.timed_out and result.output_truncated and result.stdout == "y" * limits.output_bytes


def test_one_huge_line_without_newline(sandbox, marker):
    result, _ = run(sandbox, """
        import sys
        sys.stdout.write("z" * 50 * 2**20)
    """, marker)
    assert result.returncode == 0 and not result.timed_out and result.limit_hit is None
    assert result.output_truncated and result.stdout == "z" * LIMITS.output_bytes


def test_killing_its_parents_ends_only_the_run(sandbox, marker):
    result, _ = run(sandbox, """
        import os, signal, sys
        for pid in (int(sys.argv[2]), os.getppid()):  # the harness (not in the namespace), then pid 1
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError as exc:
                print(pid == 1 or type(exc).__name__, flush=True)
        os.killpg(0, signal.SIGKILL)  # the whole process group: the launcher included
    """, marker, str(os.getpid()))
    assert not result.timed_out and result.signal == signal.SIGKILL and result.returncode in (None, -signal.SIGKILL)
    if result.isolation["memory_cgroup"]:
        assert result.limit_hit is None  # a kill, not the memory limit
    if result.isolation["pid_namespace"]:
        assert result.stdout.split()[0] == "ProcessLookupError"


def test_exit_zero_without_the_artifact(sandbox, marker):
    result, files = run(sandbox, "print('model written')\n", marker)
    assert result.returncode == 0 and result.limit_hit is None and not result.timed_out
    assert files == ["main.py"]  # the oracle finds no model file: nothing else was made


# --- a harness that dies ----------------------------------------------------------------------

HARNESS = """
import sys
from pathlib import Path
from pytest_autopilot.executors.sandbox import Limits, Sandbox
sandbox = Sandbox(Limits(timeout_s=600, cpu_s=600), base_dir=Path(sys.argv[1]))
workdir = sandbox.new_workdir()
(workdir / "main.py").write_text(
    "import signal, time\\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\\ntime.sleep(600)\\n")
print(workdir, flush=True)
sandbox.run_python("main.py", workdir, args=[sys.argv[2]])
"""


def test_killed_harness_takes_its_run_along_and_leftovers_are_removed(sandbox, marker):
    own = sandbox.new_workdir()  # a live owner's work dir: never a leftover
    harness = subprocess.Popen([sys.executable, "-c", HARNESS, str(sandbox.base_dir), marker], cwd=REPO,
                               stdout=subprocess.PIPE, text=True)
    try:
        workdir = Path(harness.stdout.readline().strip())
        # launcher, pid 1 of its namespaces and the program all carry the marker in their argv
        eventually(lambda: len(processes_with(marker, (harness.pid,))) >= 3, "the run started", 120)
        run_processes = processes_with(marker, (harness.pid,))
        cgroups = our_cgroups(harness.pid)
        os.kill(harness.pid, signal.SIGKILL)
        harness.wait()
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait()
        harness.stdout.close()
    eventually(lambda: not any(Path(f"/proc/{pid}").exists() for pid in run_processes),
               "launcher, init and program died with the harness")
    assert workdir.is_dir() and cgroups  # left behind (another harness's sweep may take the cgroups first)
    removed = remove_leftovers(sandbox.base_dir)
    assert removed["workdirs"] == [str(workdir)]
    assert not workdir.exists() and not any(cg.exists() for cg in cgroups)
    assert own.is_dir()
    sandbox.cleanup(own)


def test_launcher_whose_harness_is_already_gone_runs_nothing(sandbox):
    workdir = sandbox.new_workdir()
    prep = sandbox.prepare(workdir, LIMITS, None)
    status_r, status_w = os.pipe()
    # parent_pid 1: as if the harness had died (and the launcher been reparented) before prctl
    config = {**prep.config, "status_fd": status_w, "parent_pid": 1}
    try:
        launched = subprocess.run([sys.executable, "-I", str(LAUNCHER), json.dumps(config), "--", "touch", "ran"],
                                  cwd=workdir, pass_fds=(status_w,), timeout=120)
        assert launched.returncode == 128 + signal.SIGKILL and not (workdir / "ran").exists()
    finally:
        os.close(status_r)
        os.close(status_w)
        if prep.cgroup:
            prep.cgroup.destroy()
        sandbox.cleanup(workdir)


class RefusedViewSandbox(Sandbox):
    """The fresh tree's mount point is missing: the launcher meets a refusal, as where the OS has
    no tmpfs or pivot_root for it."""

    def prepare(self, *args, **kwargs):
        prep = super().prepare(*args, **kwargs)
        prep.config["view"]["root"] = str(self.base_dir / "no-such-mount-point")
        return prep


def test_refused_view_falls_back_to_the_read_only_host(tmp_path, marker):
    sandbox = RefusedViewSandbox(LIMITS, base_dir=tmp_path / "sandbox")
    name = f"pwned-{uuid.uuid4().hex}"
    try:
        result, _ = run(sandbox, """
            import sys
            try:
                open(sys.argv[2], "w").write("pwned")
                print("written")
            except OSError as exc:
                print(exc.strerror)
        """, marker, str(REPO / name))
    finally:
        leaked = (REPO / name).exists()
        (REPO / name).unlink(missing_ok=True)
    if not result.isolation["mount_namespace"]:
        pytest.skip("no mount namespace here")
    assert result.isolation["fs_view"] == "read-only host"
    assert "allow-list view refused" in result.isolation["fs_view_reason"]
    assert result.stdout == "Read-only file system\n" and not leaked


def test_session_end_removes_what_crashed_workers_left(pytester):
    """The plugin's controller calls ``remove_leftovers`` when the session ends."""
    base = Sandbox().base_dir  # the session's sandbox uses the default base dir
    crashed = subprocess.Popen(["true"])
    crashed.wait()  # a worker that is gone, leaving a work dir behind
    workdir = base / f"attempt-crashed-{uuid.uuid4().hex}"
    workdir.mkdir()
    (base / OWNERS / workdir.name).write_text(owner_tag(crashed.pid))
    try:
        pytester.makeini("[pytest]\nautopilot_cases_dir = cases\n")  # an autopilot session cleans up
        pytester.makepyfile("def test_nothing():\n    pass\n")
        assert pytester.runpytest_inprocess("-p", "no:xdist").ret == 0
        assert not workdir.exists() and not (base / OWNERS / workdir.name).exists()
    finally:
        if workdir.exists():
            workdir.rmdir()
            (base / OWNERS / workdir.name).unlink(missing_ok=True)
