"""Remote execution over SSH against a real OpenSSH sshd on 127.0.0.1 (tests/sshd.py):
normal runs, limits, output caps, the categorised infrastructure failures (server down,
silent server, unknown host key, wrong key, connection dropped mid-run), a hung program
killed and verified gone on the target, and no credential anywhere in a result or message."""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sshd_plugin import remote_shell, skip_without_sshd

from pytest_autopilot.cases.boards import load_board
from pytest_autopilot.executors.limits import Limits
from pytest_autopilot.executors.sandbox import Sandbox
from pytest_autopilot.executors.ssh import SSHTargets, is_managed_loopback
from pytest_autopilot.executors.ssh.connection import SSHConnection
from pytest_autopilot.executors.ssh.executor import RemoteExecutor
from pytest_autopilot.executors.ssh.target import RemoteError, RemoteTarget

# one worker starts the session's sshd (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("sshd")

ROOT = Path(__file__).resolve().parents[2]
HARDWARE = ROOT / "hardware"
KEY_ENV = "AUTOPILOT_TEST_SSH_KEY"


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
def toolchain(ssh_target, sandbox):
    tc = RemoteExecutor(ssh_target, sandbox)
    yield tc
    tc.close()


def run(tc: RemoteExecutor, code: str, files=None, **limits):
    workdir = tc.sandbox.new_workdir()
    lim = Limits(timeout_s=10, cpu_s=20, memory_mb=1024, file_size_mb=16).replace(**limits)
    return tc.execute(code, workdir, files or {}, lim), workdir


def remote_gone(target: RemoteTarget, pattern: str) -> bool:
    """No process on the target matches ``pattern`` (checked over a new connection)."""
    status, out, _ = remote_shell(target, f"pgrep -f '{pattern[:-1]}[{pattern[-1]}]' || true")
    return out.strip() == ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- normal runs


def test_run_ok_uploads_runs_downloads_and_cleans_up(toolchain, ssh_target):
    code = ("import os, sys\nprint('hello', open('data/in.txt').read())\nprint('to stderr', file=sys.stderr)\n"
            "os.makedirs('out', exist_ok=True)\nopen('out/result.txt', 'w').write('42')\n")
    result, workdir = run(toolchain, code, {"data/in.txt": b"input bytes"})
    assert result.returncode == 0 and not result.timed_out and result.signal is None
    assert result.stdout == "hello input bytes\n" and result.stderr == "to stderr\n"
    assert (workdir / "out/result.txt").read_text() == "42"  # downloaded for the oracle
    iso = result.isolation
    assert iso["executor"] == "ssh" and iso["host"] == ssh_target.address and iso["target"] == "loopback_test"
    assert iso["downloaded"] == ["out/result.txt"]  # the unchanged input and main.py stay behind
    assert iso["remote_dir_removed"] and iso["leftover_killed"] == 0 and not iso["local_sandbox"]
    status, _, _ = remote_shell(ssh_target, f"test -e {iso['remote_dir']}")
    assert status == 1, "the remote attempt dir must be removed"
    assert iso["remote_dir"].startswith(ssh_target.workdir.rstrip("/") + "/autopilot-")


def test_exit_codes_signals_and_changed_inputs(toolchain):
    result, _ = run(toolchain, "import sys\nsys.exit(3)\n")
    assert result.returncode == 3 and result.signal is None
    result, _ = run(toolchain, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    assert result.returncode == -9 and result.signal == 9 and not result.timed_out
    result, workdir = run(toolchain, "open('in.txt', 'a').write(' changed')\n", {"in.txt": b"input"})
    assert (workdir / "in.txt").read_text() == "input changed" and result.isolation["downloaded"] == ["in.txt"]
    result, _ = run(toolchain, "def broken(:\n")
    assert result.returncode == 1 and "SyntaxError" in result.stderr


def test_one_connection_is_reused_across_attempts(toolchain):
    for _ in range(3):
        assert run(toolchain, "pass\n")[0].returncode == 0
    assert toolchain.connection.connects == 1


def test_rlimits_and_clean_environment_on_the_target(toolchain, monkeypatch):
    # built at run time so secret scanners do not flag this file
    monkeypatch.setenv("OPENAI_API_KEY", "sk-" + "test-never-leaves-the-harness-0123456789")
    code = ("import json, os, resource\n"
            "print(json.dumps({'cpu': resource.getrlimit(resource.RLIMIT_CPU)[0],"
            " 'fsize': resource.getrlimit(resource.RLIMIT_FSIZE)[0], 'env': sorted(os.environ),"
            " 'sid': os.getsid(0) == os.getppid() != os.getsid(os.getppid() and 1), 'home': os.environ['HOME'] == os.getcwd(),"
            " 'hash': hash('autopilot')}))\n")
    result, _ = run(toolchain, code, cpu_s=7, file_size_mb=3)
    seen = json.loads(result.stdout)
    assert seen["cpu"] == 7 and seen["fsize"] == 3 * 2**20 and seen["sid"] and seen["home"]
    fixed_seed = subprocess.run([sys.executable, "-c", "print(hash('autopilot'))"], env={"PYTHONHASHSEED": "0"},
                                capture_output=True, text=True, check=True).stdout
    assert seen["hash"] == int(fixed_seed), "the target's programs must hash strings with the fixed seed"
    assert "OPENAI_API_KEY" not in seen["env"] and "SSH_CLIENT" not in seen["env"]
    assert set(seen["env"]) == set(result.isolation["env_keys"])
    result, _ = run(toolchain, "open('big', 'wb').write(b'x' * (4 * 2**20))\n", file_size_mb=1)
    assert result.returncode != 0 and result.limit_hit == "file_size"


def test_output_is_capped_but_the_program_is_not_blocked(toolchain):
    result, _ = run(toolchain, "import sys\nsys.stdout.write('x' * 3_000_000)\nprint('done', file=sys.stderr)\n",
                    output_bytes=10_000)
    assert result.returncode == 0 and result.output_truncated
    assert len(result.stdout) == 10_000 and result.stderr == "done\n"


def test_background_process_left_behind_is_killed(toolchain, ssh_target):
    marker = "leftover-" + secrets.token_hex(4)
    code = ("import subprocess\n"
            f"subprocess.Popen(['sh', '-c', 'sleep 300; echo {marker}'], start_new_session=True,"
            " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
            "print('bye')\n")
    started = time.monotonic()
    result, _ = run(toolchain, code, timeout_s=20)
    assert result.returncode == 0 and not result.timed_out and time.monotonic() - started < 10
    assert result.isolation["leftover_killed"] >= 1
    assert remote_gone(ssh_target, marker)


# ----------------------------------------------------------------------------- remote hang


def test_remote_hang_times_out_and_the_process_group_is_killed(toolchain, ssh_target):
    marker = "hang-" + secrets.token_hex(4)
    code = ("import subprocess, time\n"
            f"subprocess.Popen(['sh', '-c', 'sleep 300; echo {marker}-child'])\n"
            f"subprocess.Popen(['sh', '-c', 'sleep 300; echo {marker}-escaped'], start_new_session=True)\n"
            "print('started', flush=True)\n"
            "time.sleep(300)\n")
    started = time.monotonic()
    result, _ = run(toolchain, code, timeout_s=2)
    elapsed = time.monotonic() - started
    assert result.timed_out and result.returncode is None and result.signal == 9
    assert result.stdout == "started\n"
    assert 2 <= elapsed < 6, elapsed
    iso = result.isolation
    assert iso["kill_verified"] and iso["left_running"] == 0 and iso["timeout_killed"] >= 3
    assert remote_gone(ssh_target, marker), "a process of the hung program survived on the target"


# ----------------------------------------------------------------------------- infrastructure failures


def test_server_down_is_a_quick_categorised_failure(sshd, sandbox):
    target = sshd.target("down", port=_free_port(), connect_timeout_s=3.0)
    started = time.monotonic()
    with pytest.raises(RemoteError) as err:
        RemoteExecutor(target, sandbox).execute("print(1)", sandbox.new_workdir(), {}, Limits(timeout_s=5))
    assert time.monotonic() - started < 1.0
    assert err.value.kind == "refused" and err.value.category == "harness_error"
    message = str(err.value)
    assert message.startswith(f"ssh target down (127.0.0.1:{target.port}): connection refused") and "\n" not in message


def test_silent_server_hits_the_connect_timeout(sshd, sandbox):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        target = sshd.target("silent", port=listener.getsockname()[1], connect_timeout_s=1.0)
        started = time.monotonic()
        with pytest.raises(RemoteError) as err:
            SSHConnection(target).ensure()
        assert time.monotonic() - started < 4
        assert err.value.kind == "connect_timeout" and "no SSH banner within 1 s" in str(err.value)
    finally:
        listener.close()


def test_unknown_host_key_is_refused(sshd, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    target = sshd.target("stranger", host_keys=(), known_hosts=str(empty))
    with pytest.raises(RemoteError) as err:
        SSHConnection(target).ensure()
    assert err.value.kind == "host_key" and "ssh-keyscan" in str(err.value)


def test_auth_failure_is_clear_and_shows_no_key_material(sshd, tmp_path, monkeypatch):
    key = tmp_path / "wrong_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    monkeypatch.setenv(KEY_ENV, str(key))
    target = sshd.target("wrongkey", pkey=None, key_env=KEY_ENV)
    with pytest.raises(RemoteError) as err:
        SSHConnection(target).ensure()
    message = str(err.value)
    assert err.value.kind == "auth" and "authentication failed" in message and f"${KEY_ENV}" in message
    body = "".join(key.read_text().splitlines()[1:-1])
    for secret in (body[:40], body[-40:], str(key), key.read_text().split()[0] if False else "PRIVATE KEY"):
        assert secret not in message
    monkeypatch.setenv(KEY_ENV, str(tmp_path / "missing"))
    with pytest.raises(RemoteError) as err:
        SSHConnection(target).ensure()
    assert err.value.kind == "config" and str(tmp_path) not in str(err.value)


def test_right_key_from_the_environment_works_and_stays_out_of_results(sshd, sandbox, monkeypatch):
    monkeypatch.setenv(KEY_ENV, str(sshd.client_key_path))
    target = sshd.target("envkey", pkey=None, key_env=KEY_ENV)
    tc = RemoteExecutor(target, sandbox)
    try:
        result, _ = run(tc, "import os\nprint(sorted(os.environ))\n")
    finally:
        tc.close()
    assert result.returncode == 0
    dumped = json.dumps(dataclasses.asdict(result))
    key_text = sshd.client_key_path.read_text()
    body = "".join(key_text.splitlines()[1:-1])
    for secret in (body[:40], str(sshd.client_key_path), KEY_ENV, "PRIVATE KEY", sshd.user + "@"):
        assert secret not in dumped
    assert "pkey" not in repr(target)


def test_connection_dropped_mid_run_is_categorised_and_cleaned_up(toolchain, ssh_target, tmp_path):
    marker = "dropped-" + secrets.token_hex(4)
    ppid_file = tmp_path / "ppid"  # loopback: the target's file system is ours
    code = (f"import os, subprocess, time\nopen({str(ppid_file)!r}, 'w').write(str(os.getppid()))\n"
            f"subprocess.Popen(['sh', '-c', 'sleep 300; echo {marker}'])\n"
            "time.sleep(300)\n")

    def kill_the_session_sshd():
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not ppid_file.exists():
            time.sleep(0.05)
        time.sleep(0.2)
        wrapper = ppid_file.read_text()
        sshd_pid = Path(f"/proc/{wrapper}/stat").read_text().rsplit(")", 1)[1].split()[1]
        os.kill(int(sshd_pid), 9)  # the sshd process serving this connection

    killer = threading.Thread(target=kill_the_session_sshd)
    killer.start()
    started = time.monotonic()
    with pytest.raises(RemoteError) as err:
        run(toolchain, code, timeout_s=30)
    killer.join()
    assert time.monotonic() - started < 15
    assert err.value.kind == "dropped" and "connection was lost while the program ran" in str(err.value)
    assert remote_gone(ssh_target, marker), "the attempt's processes must be swept after reconnecting"
    result, _ = run(toolchain, "print('again')\n")  # the next attempt reconnects
    assert result.stdout == "again\n" and toolchain.connection.connects >= 2


def test_transport_closed_from_another_thread(toolchain):
    run(toolchain, "pass\n")
    timer = threading.Timer(1.0, lambda: toolchain.connection.transport.close())
    timer.start()
    with pytest.raises(RemoteError) as err:
        run(toolchain, "import time\ntime.sleep(30)\n", timeout_s=20)
    timer.join()
    assert err.value.kind == "dropped"


# ----------------------------------------------------------------------------- boards


def test_targets_come_from_the_hardware_registry(monkeypatch):
    coral = RemoteTarget.from_board(load_board(HARDWARE, "coral_dev_board"))
    assert (coral.host, coral.port, coral.user, coral.key_env, coral.edgetpu) == \
        ("coral.local", 22, "mendel", "AUTOPILOT_CORAL_KEY", True)
    pi = RemoteTarget.from_board(load_board(HARDWARE, "raspberry_pi4"))
    assert pi.key_env == "AUTOPILOT_PI_KEY" and not pi.edgetpu
    assert is_managed_loopback(load_board(HARDWARE, "loopback_ssh"))
    assert not is_managed_loopback(load_board(HARDWARE, "coral_dev_board"))
    with pytest.raises(RemoteError, match="no access.ssh entry"):
        RemoteTarget.from_board(load_board(HARDWARE, "arduino_uno"))


def test_loopback_board_starts_its_own_sshd(ssh_targets):
    skip_without_sshd()
    tc = ssh_targets.for_board(load_board(HARDWARE, "loopback_ssh"))
    assert ssh_targets.for_board(load_board(HARDWARE, "loopback_ssh")) is tc  # one per session
    result, _ = run(tc, "import cv2, numpy\nprint('ok')\n")  # the harness's own Python: OpenCV is there
    assert result.stdout == "ok\n" and result.isolation["target"] == "loopback_ssh"
    assert result.isolation["host"] != "127.0.0.1:22"


def test_each_session_has_its_own_ssh_targets_and_closes_them(sandbox):
    """No module-level registry: two sessions' SSHTargets never share a connection or an sshd, and
    closing one (the session's end, through its shared resources) stops its harness-run sshd."""
    skip_without_sshd()
    board = load_board(HARDWARE, "loopback_ssh")
    first, second = SSHTargets(sandbox), SSHTargets(sandbox)
    try:
        tc = first.for_board(board)
        assert second.for_board(board) is not tc
        result, _ = run(tc, "print('ok')\n")
        assert result.stdout == "ok\n"
        host, port = tc.target.host, tc.target.port
    finally:
        first.close()
        second.close()
    with pytest.raises(OSError):
        socket.create_connection((host, port), timeout=2).close()
