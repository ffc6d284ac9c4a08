"""The loopback SSH target gets the local sandbox's launcher and view; a real board's record says
it does not. Against a real OpenSSH sshd on 127.0.0.1 (tests/sshd_plugin.py), no mocks: what the
program can see and write is probed from inside it, the host side checked from here."""

from __future__ import annotations

import json
import secrets
import sys
import tempfile
import time
from pathlib import Path

import pytest
from sshd_plugin import remote_shell, skip_without_sshd

from pytest_autopilot.cases.boards import load_board
from pytest_autopilot.executors.limits import Limits
from pytest_autopilot.executors.sandbox import Sandbox
from pytest_autopilot.executors.ssh import SSHTargets
from pytest_autopilot.executors.ssh.executor import RemoteExecutor

pytestmark = [pytest.mark.skipif(sys.platform != "linux", reason="the sandbox relies on Linux namespaces/cgroups"),
              pytest.mark.xdist_group("sshd")]  # one worker starts the session's sshd (--dist loadgroup)

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "cases/dp/clean_split/solutions/reference.py"
VIEW_KEYS = ("fs_view", "network_namespace", "pid_namespace", "mount_namespace", "ipc_namespace", "pids_cgroup",
             "memory_cgroup", "memory_limit", "capabilities_dropped", "no_new_privs", "dies_with_harness",
             "readonly_paths")

PROBE = f"""
import json, os
seen = {{}}
try:
    seen["reference"] = open({str(REFERENCE)!r}).read()[:20]
except OSError as exc:
    seen["reference"] = type(exc).__name__
try:
    import pytest_autopilot
    seen["import"] = pytest_autopilot.__file__
except ImportError as exc:
    seen["import"] = type(exc).__name__
seen["checkout"] = sorted(os.listdir({str(ROOT)!r})) if os.path.isdir({str(ROOT)!r}) else None
seen["beside_work_dir"] = sorted(os.listdir(".."))
open("out.txt", "w").write("written")
print(json.dumps(seen))
"""


@pytest.fixture
def sandbox(tmp_path):
    return Sandbox(Limits(timeout_s=10), base_dir=tmp_path / "local")


@pytest.fixture
def ssh_targets(sandbox):
    """What a session keeps in its shared resources for ``executor: ssh``, closed at its end."""
    targets = SSHTargets(sandbox)
    yield targets
    targets.close()


@pytest.fixture
def view_toolchain(sshd, sandbox):
    tc = RemoteExecutor(sshd.target("loopback_view", local_view=True, connect_timeout_s=3.0), sandbox)
    yield tc
    tc.close()


def run(tc, code: str, **limits):
    workdir = tc.sandbox.new_workdir()
    return tc.execute(code, workdir, {}, Limits(timeout_s=20, cpu_s=20, memory_mb=1024).replace(**limits)), workdir


def require_allow_list(result) -> None:
    if result.isolation["fs_view"] != "allow-list":
        pytest.skip(f"no allow-list view here (the local sandbox has none either): {result.isolation['fs_view_reason']}")


def test_same_view_as_a_local_sandbox_run(view_toolchain, sandbox):
    remote, _ = run(view_toolchain, "print('ok')\n")
    workdir = sandbox.new_workdir()
    (workdir / "main.py").write_text("print('ok')\n")
    local = sandbox.run_python("main.py", workdir)
    assert remote.returncode == local.returncode == 0 and remote.stdout == local.stdout == "ok\n"
    assert remote.isolation["local_sandbox"] is True and remote.isolation["executor"] == "ssh"
    assert {k: remote.isolation[k] for k in VIEW_KEYS} == {k: local.isolation[k] for k in VIEW_KEYS}
    assert remote.isolation["launcher_errors"] == local.isolation["launcher_errors"]


def test_program_cannot_read_the_checkout_or_import_the_harness(view_toolchain):
    assert REFERENCE.is_file()
    result, workdir = run(view_toolchain, PROBE)
    require_allow_list(result)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["reference"] == "FileNotFoundError"
    assert seen["import"] in ("ModuleNotFoundError", "ImportError")
    assert seen["checkout"] in (None, [], [".venv"])  # at most the interpreter's venv, bound alone
    assert seen["beside_work_dir"] == ["work"], "the wrapper's status files must stay out of the view"
    assert (workdir / "out.txt").read_text() == "written"  # the work dir is writable and comes back
    iso = result.isolation
    assert iso["fs_view"] == "allow-list" and iso["mount_namespace"] and iso["remote_dir_removed"]


def test_program_cannot_write_or_read_host_tmp(view_toolchain):
    token = secrets.token_hex(6)
    host_tmp = Path(tempfile.gettempdir())
    sentinel = host_tmp / f"autopilot-sentinel-{token}"
    sentinel.write_text("host secret")
    written = [host_tmp / f"autopilot-escape-{token}", Path("/var/tmp") / f"autopilot-escape-{token}"]
    code = (f"import json, os\nseen = {{'sentinel': os.path.exists({str(sentinel)!r})}}\n"
            f"for path in {[str(p) for p in written]!r}:\n"
            "    try:\n        open(path, 'w').write('escaped')\n        seen[path] = 'written'\n"
            "    except OSError as exc:\n        seen[path] = type(exc).__name__\n"
            "print(json.dumps(seen))\n")
    try:
        result, _ = run(view_toolchain, code)
        require_allow_list(result)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["sentinel"] is False
        for path in written:
            assert not path.exists(), f"{path}: the program wrote the host's temp dir"
    finally:
        sentinel.unlink()
        for path in written:
            path.unlink(missing_ok=True)


def test_hung_program_is_killed_with_its_cgroup(view_toolchain, sshd):
    marker = "viewhang-" + secrets.token_hex(4)
    code = ("import subprocess, time\n"
            f"subprocess.Popen(['sh', '-c', 'sleep 300; echo {marker}'], start_new_session=True)\n"
            "print('started', flush=True)\ntime.sleep(300)\n")
    started = time.monotonic()
    result, _ = run(view_toolchain, code, timeout_s=3)
    assert result.timed_out and result.signal == 9 and result.stdout == "started\n"
    assert time.monotonic() - started < 60  # generous: two loaded cores
    iso = result.isolation
    assert iso["kill_verified"] and iso["left_running"] == 0 and iso["local_sandbox"]
    assert iso["fs_view"] in ("allow-list", "read-only host", "host")  # the setup report arrived before the hang
    status, out, _ = remote_shell(sshd.target(), f"pgrep -f '{marker[:-1]}[{marker[-1]}]' || true")
    assert out.strip() == "", "a process of the hung program survived"


def test_a_real_board_records_that_no_view_was_applied(ssh_target, sandbox):
    tc = RemoteExecutor(ssh_target, sandbox)  # the plain remote path, as a Coral or a Pi gets it
    try:
        result, _ = run(tc, "print('ok')\n")
    finally:
        tc.close()
    assert result.stdout == "ok\n"
    iso = result.isolation
    assert iso["fs_view"] == "remote: not applied" and iso["local_sandbox"] is False
    assert "login user" in iso["fs_view_reason"]


def test_the_loopback_board_gets_the_view(ssh_targets):
    skip_without_sshd()
    tc = ssh_targets.for_board(load_board(ROOT / "hardware", "loopback_ssh"))
    assert tc.target.local_view
    result, _ = run(tc, PROBE)
    assert result.isolation["local_sandbox"] and result.isolation["target"] == "loopback_ssh"
    require_allow_list(result)
    seen = json.loads(result.stdout)
    assert seen["reference"] == "FileNotFoundError" and seen["import"] in ("ModuleNotFoundError", "ImportError")
