"""The sandbox contains hostile generated code: secrets, runaway loops, fork bombs, writes, network."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import uuid
from pathlib import Path

import pytest
from checkout_view import checkout_write_blocked
from proc_scan import processes_with

from pytest_autopilot.executors.limits import Limits, scrubbed_env
from pytest_autopilot.executors.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox relies on Linux namespaces/cgroups")


@pytest.fixture
def sandbox(tmp_path):
    return Sandbox(Limits(timeout_s=10), base_dir=tmp_path / "sandbox")


@pytest.fixture
def workdir(sandbox):
    wd = sandbox.new_workdir()
    yield wd
    sandbox.cleanup(wd)


def script(workdir: Path, code: str, name: str = "main.py") -> Path:
    path = workdir / name
    path.write_text(textwrap.dedent(code))
    return path




def test_limits_replace_ignores_none():
    limits = Limits().replace(timeout_s=5, cpu_s=None)
    assert limits.timeout_s == 5 and limits.cpu_s == Limits().cpu_s


def test_scrubbed_env_is_an_allow_list(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123")
    monkeypatch.setenv("SOME_HARMLESS_VAR", "x")
    env = scrubbed_env(tmp_path, {"MY_SETTING": "1"})
    assert "OPENAI_API_KEY" not in env and "SOME_HARMLESS_VAR" not in env
    assert env["HOME"] == str(tmp_path) and env["TMPDIR"] == str(tmp_path / ".tmp")
    assert env["MY_SETTING"] == "1" and env["PYTHONDONTWRITEBYTECODE"] == "1"
    for name in ("HF_TOKEN", "db_password", "x_secret", "AWS_CREDENTIALS", "Api_Key", "AUTH_HEADER"):
        with pytest.raises(ValueError, match="secret"):
            scrubbed_env(tmp_path, {name: "v"})


def test_secret_env_is_invisible_to_generated_code(monkeypatch, sandbox, workdir):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-sandbox-secret")
    monkeypatch.setenv("AUTOPILOT_TEST_TOKEN", "tok-sandbox-secret")
    code = script(workdir, """
        import json, os, sys
        print(json.dumps(dict(os.environ)))
        try:  # the harness's own environment, via /proc
            print(open(f"/proc/{sys.argv[1]}/environ", "rb").read().decode(errors="replace"))
        except OSError as exc:
            print("environ unreadable:", exc)
    """)
    result = sandbox.run_python(code, workdir, args=[str(os.getpid())], env_extra={"CASE_NAME": "demo"})
    assert result.returncode == 0, result.stderr
    env = json.loads(result.stdout.splitlines()[0])
    assert "OPENAI_API_KEY" not in env and "AUTOPILOT_TEST_TOKEN" not in env
    assert "sandbox-secret" not in result.stdout
    assert env["CASE_NAME"] == "demo" and env["HOME"] == str(workdir)
    assert sorted(env) == result.isolation["env_keys"]
    with pytest.raises(ValueError):
        sandbox.run_python(code, workdir, env_extra={"OPENAI_API_KEY": "sk-leak"})


def test_infinite_loop_dies_at_timeout_with_all_its_children(sandbox, workdir):
    marker = f"loop-{uuid.uuid4().hex}"
    code = script(workdir, """
        import subprocess, sys
        # a detached grandchild (own session) that would outlive a plain kill of the main process
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", sys.argv[1]],
                         start_new_session=True)
        print("looping", flush=True)
        while True:
            pass
    """)
    result = sandbox.run_python(code, workdir, args=[marker], limits=sandbox.limits.replace(timeout_s=1))
    assert result.timed_out
    assert 1 <= result.duration_s < 4
    assert result.returncode is None and result.signal == signal.SIGKILL
    assert "looping" in result.stdout  # output produced before the kill is kept
    assert processes_with(marker) == []


def test_normal_exit_does_not_leave_background_processes(sandbox, workdir):
    marker = f"daemon-{uuid.uuid4().hex}"
    code = script(workdir, """
        import subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", sys.argv[1]],
                         start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print("bye")
    """)
    result = sandbox.run_python(code, workdir, args=[marker])
    assert result.returncode == 0 and result.stdout.strip() == "bye" and not result.timed_out
    assert result.duration_s < 5
    assert processes_with(marker) == []


def _require_process_containment(result):
    if not (result.isolation["pids_cgroup"] or result.isolation["rlimit_nproc"]):
        pytest.skip("neither a writable pids cgroup nor RLIMIT_NPROC (non-root) is available here")


def test_python_fork_bomb_is_contained(sandbox, workdir):
    marker = f"pybomb-{uuid.uuid4().hex}"
    code = script(workdir, """
        import os, time
        while True:
            try:
                os.fork()
            except OSError:
                time.sleep(0.001)  # keep pressing against the limit until killed
    """)
    limits = sandbox.limits.replace(timeout_s=2, processes=32)
    result = sandbox.run_python(code, workdir, args=[marker], limits=limits)
    _require_process_containment(result)
    assert result.duration_s < limits.timeout_s + 3
    assert result.limit_hit == "processes", (result.isolation, result.stderr[-500:])
    assert processes_with(marker) == []
    assert subprocess.run(["true"]).returncode == 0  # this machine can still fork


def test_shell_fork_bomb_is_contained(sandbox, workdir):
    marker = f"shbomb-{uuid.uuid4().hex}"
    limits = sandbox.limits.replace(timeout_s=2, processes=32)
    result = sandbox.run(["bash", "-c", "bomb() { bomb | bomb & }; bomb; sleep 30", marker], workdir,
                         limits=limits)
    _require_process_containment(result)
    assert result.duration_s < limits.timeout_s + 3
    assert result.timed_out  # the `sleep 30` keeps the main shell alive until the timeout
    assert result.limit_hit == "processes", (result.isolation, result.stderr[-500:])
    assert processes_with(marker) == []
    assert subprocess.run(["true"]).returncode == 0


def test_writes_do_not_land_in_the_repository(sandbox, workdir, tmp_path):
    name = f"pwned-{uuid.uuid4().hex}.txt"
    depth = len(workdir.relative_to("/").parts)
    code = script(workdir, f"""
        import json, os, sysconfig
        results = {{}}
        targets = {{
            "relative_up2": "../../{name}",          # from the work dir: next to the base dir
            "relative_base": "../{name}",            # the base dir, beside other attempts' dirs
            "relative_repo": "{'../' * depth}{REPO.relative_to('/')}/{name}",
            "absolute_repo": "{REPO / name}",
            "stdlib": os.path.join(sysconfig.get_paths()["stdlib"], "{name}"),
            "home": os.path.expanduser("~/{name}"),
            "local": "{name}",
        }}
        for key, path in targets.items():
            try:
                with open(path, "w") as f:
                    f.write("pwned")
                results[key] = "written"
            except OSError as exc:
                results[key] = f"{{type(exc).__name__}}: {{exc.strerror}}"
        print(json.dumps(results))
    """)
    result = sandbox.run_python(code, workdir)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert not (REPO / name).exists()
    assert (workdir / name).exists() and outcome["local"] == "written"
    assert outcome["home"] == "written"  # HOME is the work dir
    view = result.isolation["fs_view"]
    if view == "allow-list":  # the checkout is not in the view; the stdlib is read-only
        assert checkout_write_blocked(outcome["absolute_repo"]) and checkout_write_blocked(outcome["relative_repo"])
        assert outcome["stdlib"].startswith("OSError: Read-only file system")
        # Beside the work dir is the run's private /tmp: writable, and gone with the run.
        assert outcome["relative_base"] == outcome["relative_up2"] == "written"
        assert not (tmp_path / name).exists() and not (sandbox.base_dir / name).exists()
    elif view == "read-only host":  # the mount namespace makes the host read-only
        assert outcome["absolute_repo"].startswith("OSError: Read-only file system")
        assert outcome["relative_repo"].startswith("OSError: Read-only file system")
        assert outcome["relative_base"].startswith("OSError: Read-only file system")
        assert outcome["stdlib"].startswith("OSError: Read-only file system")
        # A relative escape only reaches the temp dir: writable, but nowhere near the repository.
        assert outcome["relative_up2"] == "written" and (tmp_path / name).exists()
    else:  # only the fresh cwd outside the repository protects it: absolute writes get through
        (REPO / name).unlink(missing_ok=True)
        pytest.skip(f"no mount namespace here; absolute write outcome: {outcome['absolute_repo']}")


def test_hostile_escapes_fail(sandbox, workdir):
    code = script(workdir, """
        import ctypes, json, os, resource, sys
        results = {}
        def attempt(name, action):
            try:
                action()
                results[name] = "succeeded"
            except Exception as exc:
                results[name] = f"{type(exc).__name__}: {exc}"
        def remount_root_rw():
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.mount(None, b"/", None, ctypes.c_ulong(32 | 4096), None) != 0:  # MS_REMOUNT|MS_BIND
                raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        def leave_cgroup():
            with open("/sys/fs/cgroup/pids/cgroup.procs", "w") as f:
                f.write(str(os.getpid()))
        attempt("raise_memory_limit", lambda: resource.setrlimit(resource.RLIMIT_AS, (-1, -1)))
        attempt("remount_root_rw", remount_root_rw)
        attempt("leave_cgroup", leave_cgroup)
        attempt("signal_harness", lambda: os.kill(int(sys.argv[1]), 0))
        print(json.dumps(results))
    """)
    result = sandbox.run_python(code, workdir, args=[str(os.getpid())])
    assert result.returncode == 0, result.stderr
    outcome, iso = json.loads(result.stdout), result.isolation
    if not iso["capabilities_dropped"] and os.geteuid() == 0:
        pytest.skip("capabilities could not be dropped")
    assert outcome["raise_memory_limit"] != "succeeded"
    assert outcome["remount_root_rw"] != "succeeded"
    assert outcome["leave_cgroup"] != "succeeded"
    if iso["pid_namespace"]:
        assert outcome["signal_harness"].startswith("ProcessLookupError")


def test_network_is_cut_off(sandbox, workdir):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    code = script(workdir, f"""
        import socket
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
            print("connected")
        except OSError as exc:
            print("blocked:", exc)
    """)
    try:
        result = sandbox.run_python(code, workdir)
        if not result.isolation["network_namespace"]:
            pytest.skip(f"no network namespace available: {result.isolation['launcher_errors']}")
        assert result.stdout.startswith("blocked"), result.stdout + result.stderr
        # Control: the same code with network allowed reaches the listener.
        allowed = sandbox.run_python(code, workdir, limits=sandbox.limits.replace(network=True))
        assert allowed.stdout.strip() == "connected" and not allowed.isolation["network_namespace"]
    finally:
        listener.close()


def test_cpu_limit(sandbox, workdir):
    code = script(workdir, "while True:\n    pass\n")
    result = sandbox.run_python(code, workdir, limits=sandbox.limits.replace(cpu_s=1, timeout_s=10))
    assert result.limit_hit == "cpu" and not result.timed_out
    assert result.signal == signal.SIGXCPU and result.duration_s < 5


def test_memory_limit(sandbox, workdir):
    code = script(workdir, "block = bytearray(2 * 1024**3)\nprint('allocated')\n")
    result = sandbox.run_python(code, workdir, limits=sandbox.limits.replace(memory_mb=256))
    assert result.returncode != 0 and "allocated" not in result.stdout
    assert result.limit_hit == "memory", result.stderr


def test_file_size_limit(sandbox, workdir):
    code = script(workdir, "with open('big.bin', 'wb') as f:\n    f.write(b'0' * 10 * 2**20)\n")
    limits = sandbox.limits.replace(file_size_mb=1)
    result = sandbox.run_python(code, workdir, limits=limits)
    assert result.returncode != 0 and result.limit_hit == "file_size", result.stderr
    assert (workdir / "big.bin").stat().st_size <= 2**20
    # Programs that do not ignore SIGXFSZ (Python does) are killed by it.
    native = sandbox.run(["dd", "if=/dev/zero", "of=big2.bin", "bs=1M", "count=10"], workdir, limits=limits)
    assert native.signal == signal.SIGXFSZ and native.limit_hit == "file_size"
    # ... and a shell reports that as exit status 128+25 with a message.
    shell = sandbox.run(["sh", "-c", "head -c 10000000 /dev/zero > big3.bin"], workdir, limits=limits)
    assert shell.returncode == 128 + signal.SIGXFSZ and shell.limit_hit == "file_size"


def test_output_is_capped(sandbox, workdir):
    code = script(workdir, "import sys\nsys.stdout.write('x' * 2**20)\nsys.stderr.write('e' * 2**20)\n")
    result = sandbox.run_python(code, workdir, limits=sandbox.limits.replace(output_bytes=10_000))
    assert result.returncode == 0 and result.output_truncated
    assert len(result.stdout) == 10_000 and len(result.stderr) == 10_000


def test_stdin_and_missing_command(sandbox, workdir):
    echoed = sandbox.run(["cat"], workdir, stdin=b"hello sandbox")
    assert echoed.returncode == 0 and echoed.stdout == "hello sandbox"
    missing = sandbox.run(["no-such-command-xyz"], workdir)
    assert missing.returncode == 127 and "cannot execute" in missing.stderr


def test_fresh_workdirs_and_cleanup(sandbox):
    first, second = sandbox.new_workdir(), sandbox.new_workdir()
    assert first != second and first.parent == second.parent == sandbox.base_dir
    assert list(first.iterdir()) == [] and list(second.iterdir()) == []
    result = sandbox.run(["sh", "-c", "mkdir -p locked/inner && touch locked/inner/f && chmod 000 locked"], first)
    assert result.returncode == 0, result.stderr
    sandbox.cleanup(first)
    sandbox.cleanup(second)
    assert not first.exists() and not second.exists()
    with pytest.raises(ValueError):
        sandbox.cleanup(Path(tempfile.gettempdir()))
    with pytest.raises(ValueError):
        sandbox.new_workdir(prefix="../escape-")


def test_base_dir_and_workdir_inside_repository_are_refused(sandbox):
    inside = REPO / f"sandbox-{uuid.uuid4().hex}"
    with pytest.raises(ValueError, match="inside the project"):
        Sandbox(base_dir=inside)
    assert not inside.exists()
    with pytest.raises(ValueError, match="inside the project"):
        sandbox.run(["true"], REPO / "tests")


def test_default_base_dir_is_in_system_temp():
    base = Sandbox().base_dir
    assert base == Path(tempfile.gettempdir()).resolve() / f"pytest-autopilot-{os.getuid()}"
    assert REPO not in base.parents and (base.stat().st_mode & 0o777) == 0o700
