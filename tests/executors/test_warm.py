"""The warm (fork-server) executor gives the same ExecResult as the cold sandbox, and contains the same attacks."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest
from checkout_view import checkout_write_blocked
from proc_scan import processes_with

from pytest_autopilot.core.errors import ToolchainMissing
from pytest_autopilot.executors.limits import Limits
from pytest_autopilot.executors.sandbox import Sandbox
from pytest_autopilot.executors.warm import WarmPythonExecutor

REPO = Path(__file__).resolve().parents[2]
SECRET = "sk-" + "warm-test-secret-4711"  # built so scanners skip the file

pytestmark = [
    pytest.mark.xdist_group("tf-server"),  # one worker starts the module's TensorFlow server (--dist loadgroup)
    pytest.mark.skipif(sys.platform != "linux", reason="the sandbox relies on Linux namespaces/cgroups"),
    pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None,
                       reason="TensorFlow is not installed; install it with: pip install tensorflow-cpu"),
]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    return Sandbox(Limits(timeout_s=20), base_dir=tmp_path_factory.mktemp("warm") / "sandbox")


@pytest.fixture(scope="module")
def warm(sandbox):
    """One TensorFlow server for the module, started while the harness holds a secret."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_API_KEY", SECRET)
        toolchain = WarmPythonExecutor(sandbox)
        toolchain.server_info()  # start it now, with the secret in our environment
    yield toolchain
    toolchain.close()


@pytest.fixture
def light(sandbox):
    """A server that preloads nothing heavy: starts in ms, for the restart/shutdown mechanics."""
    toolchain = WarmPythonExecutor(sandbox, preload=("json",))
    yield toolchain
    toolchain.close()


@pytest.fixture
def workdir(sandbox):
    wd = sandbox.new_workdir()
    yield wd
    sandbox.cleanup(wd)


def dedent(code: str) -> str:
    return textwrap.dedent(code).lstrip("\n")


def run_warm(toolchain, sandbox, code: str, **kwargs):
    wd = sandbox.new_workdir()
    try:
        result = toolchain.execute(dedent(code), wd, {}, kwargs.pop("limits", None))
        return result, wd, {p.relative_to(wd).as_posix(): p.read_bytes() for p in wd.rglob("*") if p.is_file()}
    finally:
        sandbox.cleanup(wd)


def run_cold(sandbox, code: str, limits=None):
    wd = sandbox.new_workdir()
    try:
        (wd / "main.py").write_text(dedent(code))
        result = sandbox.run_python("main.py", wd, limits=limits)
        return result, wd, {p.relative_to(wd).as_posix(): p.read_bytes() for p in wd.rglob("*") if p.is_file()}
    finally:
        sandbox.cleanup(wd)


def same_result(cold, warm):
    """Compare two ExecResults field by field (work-dir paths normalised)."""
    (c, cwd, _), (w, wwd, _) = cold, warm
    norm = lambda text, wd: text.replace(str(wd), "<WORKDIR>")  # noqa: E731
    assert (w.returncode, w.timed_out, w.signal, w.limit_hit, w.output_truncated) == \
        (c.returncode, c.timed_out, c.signal, c.limit_hit, c.output_truncated), (c, w)
    assert norm(w.stdout, wwd) == norm(c.stdout, cwd)
    assert norm(w.stderr, wwd) == norm(c.stderr, cwd)
    skip = {"executor", "preloaded", "server_pid", "server_restarts", "server_threads", "server_start_s",
            "server_restarted_for_this_attempt", "cpu_s_used",
            "dies_with_harness"}  # a warm attempt outlives its server on purpose
    assert {k: v for k, v in w.isolation.items() if k not in skip} == \
        {k: v for k, v in c.isolation.items() if k not in skip}
    assert w.isolation["executor"] == "warm-fork" and "executor" not in c.isolation




# --- same semantics as the cold sandbox --------------------------------------------------------

PROBE = """
    import json, os, sys
    print(json.dumps({"name": __name__, "file": __file__, "argv": sys.argv, "path0": sys.path[0],
                      "cwd": os.getcwd(), "home": os.environ["HOME"], "flags": [sys.flags.ignore_environment,
                      sys.flags.no_user_site], "executable": sys.executable, "pid": os.getpid(),
                      "stdin": sys.stdin.read(), "tmp": __import__("tempfile").gettempdir(),
                      "stdio": [(f.name, f.encoding, f.errors, f.line_buffering, f.write_through, f.seekable(),
                                 f.isatty(), f.mode, type(f.buffer).__name__) for f in (sys.stdin, sys.stdout, sys.stderr)],
                      "same": [sys.stdout is sys.__stdout__, sys.stderr is sys.__stderr__]}))
"""


def test_success_like_cold(warm, sandbox):
    cold, hot = run_cold(sandbox, PROBE), run_warm(warm, sandbox, PROBE)
    same_result(cold, hot)
    assert hot[0].returncode == 0 and hot[0].isolation["pid_namespace"] and hot[0].isolation["mount_namespace"]
    probe = json.loads(hot[0].stdout)
    assert probe["name"] == "__main__" and probe["argv"] == ["main.py"] and probe["path0"] == str(hot[1])
    assert probe["tmp"] == str(hot[1] / ".tmp")  # not the server's cached TMPDIR


@pytest.mark.parametrize("code", [
    "def f():\n    raise ValueError('boom')\nf()\n",  # exception: traceback + exit 1
    "import sys\nprint('partial')\nsys.exit(3)\n",
    "import sys\nsys.exit('fatal: went wrong')\n",  # message to stderr, exit 1
    "raise SystemExit\n",
    "def broken(:\n    pass\n",  # SyntaxError: no Traceback header, like CPython
    "import sys\nsys.excepthook = lambda *a: print('custom hook', a[0].__name__, file=sys.stderr)\n1/0\n",
    "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n",
    "import threading, time\n"
    "threading.Thread(target=lambda: (time.sleep(0.3), print('thread done', flush=True))).start()\n",
    "import atexit\natexit.register(print, 'atexit ran')\nf = open('unclosed.txt', 'w')\nf.write('kept')\n",
], ids=["exception", "exit3", "exit-message", "exit-none", "syntax", "excepthook", "sigterm", "thread", "atexit"])
def test_exit_semantics_like_cold(warm, sandbox, code):
    cold, hot = run_cold(sandbox, code), run_warm(warm, sandbox, code)
    same_result(cold, hot)
    # the same files (warm always re-creates keras's home; cold only when the script imports keras)
    assert {k: v for k, v in hot[2].items() if not k.startswith(".keras/")} == cold[2]


def test_exception_traceback_has_no_executor_frames(warm, sandbox):
    result, wd, _ = run_warm(warm, sandbox, "def f():\n    raise ValueError('boom')\nf()\n")
    assert result.returncode == 1 and result.limit_hit is None
    assert result.stderr == (f'Traceback (most recent call last):\n  File "{wd}/main.py", line 3, in <module>\n    f()\n'
                             f'  File "{wd}/main.py", line 2, in f\n    raise ValueError(\'boom\')\nValueError: boom\n')


def test_tensorflow_is_preloaded(warm, sandbox):
    result, _, files = run_warm(warm, sandbox, """
        import sys
        print("tensorflow" in sys.modules)
        import tensorflow as tf
        print(tf.constant([1.0, 2.0]).numpy().sum())
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "3.0"]
    assert result.isolation["preloaded"] == ["tensorflow"]
    # keras's import-time home follows this attempt's HOME, as a cold import would
    assert json.loads(files[".keras/keras.json"])["floatx"] == "float32"


DP_PROGRAM = """
    import sys
    preloaded = "pandas" in sys.modules
    import pandas as pd
    df = pd.DataFrame({"a": [3, 1, None, 1], "b": ["x", "y", "z", "y"]}).dropna().drop_duplicates()
    df.to_csv("out.csv", index=False)
    print(preloaded, pd.get_option("display.max_rows"), len(df))
    pd.set_option("display.max_rows", 7)  # must not reach the next attempt
"""


def test_pandas_server_runs_a_dp_program_as_cold_does(sandbox):
    """executor: warm-pandas (the DP cases'): pandas preloaded, the same output file and exit as a cold
    run, and an attempt's changes to pandas' global options never reach the next attempt."""
    with WarmPythonExecutor(sandbox, preload=("pandas",)) as toolchain:
        first, second = run_warm(toolchain, sandbox, DP_PROGRAM), run_warm(toolchain, sandbox, DP_PROGRAM)
    cold = run_cold(sandbox, DP_PROGRAM)
    assert first[0].returncode == 0, first[0].stderr
    assert first[0].stdout.split() == second[0].stdout.split() == ["True", "60", "2"]
    assert cold[0].stdout.split() == ["False", "60", "2"]
    assert first[2]["out.csv"] == second[2]["out.csv"] == cold[2]["out.csv"] == b"a,b\n3.0,x\n1.0,y\n"
    assert first[0].isolation["preloaded"] == ["pandas"] and first[0].isolation["executor"] == "warm-fork"


HASH_ORDER = """
    print(list({"alpha", "beta", "gamma", "delta", "epsilon", "zeta"}), hash("autopilot"))
"""


def test_programs_hash_strings_with_one_fixed_seed_cold_and_warm(light, sandbox):
    """A printed set of strings (in an error message, say) comes out in one order in every run, cold or
    warm, so a replay feeds back the repair prompt the recording did: the seed is PYTHONHASHSEED=0."""
    fixed = subprocess.run([sys.executable, "-c", dedent(HASH_ORDER)], env={"PYTHONHASHSEED": "0"},
                           capture_output=True, text=True, check=True).stdout
    runs = [run_cold(sandbox, HASH_ORDER) for _ in range(2)] + [run_warm(light, sandbox, HASH_ORDER) for _ in range(2)]
    assert [result.stdout for result, _, _ in runs] == [fixed] * 4, [result for result, _, _ in runs]


def test_global_state_does_not_leak_between_attempts(warm, sandbox):
    first, _, _ = run_warm(warm, sandbox, """
        import sys, random, numpy as np, tensorflow as tf, keras
        keras.config.set_floatx("float16")
        tf.keras.backend.set_epsilon(0.5)
        tf.autopilot_leak = "leaked"
        sys.modules["autopilot_leak"] = object()
        print(random.random(), np.random.rand())
    """)
    second, _, _ = run_warm(warm, sandbox, """
        import sys, random, numpy as np, tensorflow as tf, keras
        print(keras.config.floatx(), keras.config.epsilon(), hasattr(tf, "autopilot_leak"),
              "autopilot_leak" in sys.modules)
        print(random.random(), np.random.rand())
    """)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    lines = second.stdout.splitlines()
    assert lines[0] == "float32 1e-07 False False"
    assert lines[1] != first.stdout.strip()  # random generators are reseeded per attempt


def test_infinite_loop_times_out_and_nothing_survives(warm, sandbox):
    marker = f"warmloop-{uuid.uuid4().hex}"
    code = f"""
        import subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "{marker}"], start_new_session=True)
        print("looping", flush=True)
        while True:
            pass
    """
    limits = sandbox.limits.replace(timeout_s=1)
    hot = run_warm(warm, sandbox, code, limits=limits)
    result = hot[0]
    assert result.timed_out and result.returncode is None and result.signal == signal.SIGKILL
    assert 1 <= result.duration_s < 4 and "looping" in result.stdout
    assert processes_with(marker) == []
    info = warm.server_info()
    assert info["children"] == 0 and info["threads"] == 1  # reaped; the server is still single-threaded
    same_result(run_cold(sandbox, code, limits=limits), hot)


def test_secret_env_var_invisible(warm, sandbox, monkeypatch):
    monkeypatch.setenv("AUTOPILOT_TEST_TOKEN", "tok-" + SECRET)
    result, wd, _ = run_warm(warm, sandbox, f"""
        import json, os
        print(json.dumps(dict(os.environ)))
        for pid in (1, {warm.server_info()["pid"]}, {os.getpid()}):
            try:
                print(open(f"/proc/{{pid}}/environ", "rb").read().decode(errors="replace"))
            except OSError as exc:
                print("unreadable", pid, exc)
    """)
    assert result.returncode == 0, result.stderr
    env = json.loads(result.stdout.splitlines()[0])
    assert SECRET not in result.stdout and "OPENAI_API_KEY" not in env and "AUTOPILOT_TEST_TOKEN" not in env
    assert env["HOME"] == str(wd) and sorted(env) == result.isolation["env_keys"]
    # the server itself never had it, although the harness did when it started the server
    server_env = Path(f"/proc/{result.isolation['server_pid']}/environ").read_bytes()
    assert SECRET.encode() not in server_env and b"OPENAI_API_KEY" not in server_env


def test_writes_to_the_repository_are_blocked(warm, sandbox):
    name = f"pwned-{uuid.uuid4().hex}.txt"
    server_dir = warm._server.dir
    result, wd, files = run_warm(warm, sandbox, f"""
        import json, os, sysconfig
        results = {{}}
        for key, path in {{"repo": "{REPO / name}", "stdlib": os.path.join(sysconfig.get_paths()["stdlib"], "{name}"),
                          "server_dir": "{server_dir / name}", "sibling": "../{name}",
                          "home": os.path.expanduser("~/{name}"), "local": "{name}"}}.items():
            try:
                with open(path, "w") as f:
                    f.write("pwned")
                results[key] = "written"
            except OSError as exc:
                results[key] = exc.strerror
        print(json.dumps(results))
    """)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert result.isolation["fs_view"] == "allow-list", result.isolation
    assert outcome["stdlib"] == "Read-only file system"
    # the checkout is read-only where the view shows it (around a venv inside it), else absent
    assert checkout_write_blocked(outcome["repo"])
    # the server's dir and the sibling are not in the view: what is there is the private /tmp
    assert outcome["server_dir"] == "No such file or directory" and outcome["sibling"] == "written"
    assert outcome["home"] == outcome["local"] == "written" and name in files
    assert not (REPO / name).exists() and not (server_dir / name).exists()
    assert not (sandbox.base_dir / name).exists()


def test_checkout_and_harness_package_are_out_of_reach(light, sandbox):
    reference = REPO / "cases" / "dp" / "clean_split" / "solutions" / "reference.py"
    result = run_warm(light, sandbox, f"""
        import importlib.util, os
        try:
            import pytest_autopilot  # the server has the editable-install finder: it finds nothing
            print("imported")
        except ImportError as exc:
            print(type(exc).__name__)
        print(importlib.util.find_spec("pytest_autopilot"), os.path.exists("{reference}"), os.path.exists("/run"))
    """)[0]
    assert reference.is_file() and result.returncode == 0, result.stderr
    assert result.isolation["fs_view"] == "allow-list" and result.isolation["memory_limit"] == "cgroup"
    assert result.stdout.split() == ["ModuleNotFoundError", "None", "False", "False"]


def test_network_is_blocked(warm, sandbox):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    code = f"""
        import socket
        try:
            socket.create_connection(("127.0.0.1", {listener.getsockname()[1]}), timeout=2).close()
            print("connected")
        except OSError as exc:
            print("blocked:", exc)
    """
    try:
        result = run_warm(warm, sandbox, code)[0]
        assert result.isolation["network_namespace"] and result.stdout.startswith("blocked"), result.stdout
        allowed = run_warm(warm, sandbox, code, limits=sandbox.limits.replace(network=True))[0]
        assert allowed.stdout.strip() == "connected" and not allowed.isolation["network_namespace"]
    finally:
        listener.close()


def test_fork_bomb_is_contained(warm, sandbox):
    marker = f"warmbomb-{uuid.uuid4().hex}"
    code = f"""
        import os, time
        MARK = "{marker}"
        refused = 0
        while refused < 50:  # every process gives up once the cap has refused it often enough
            try:
                if os.fork() == 0:
                    os.execlp("sh", "sh", "-c", "sleep 300", MARK) if os.getpid() % 7 == 0 else None
            except OSError:
                refused += 1
                time.sleep(0.001)
    """
    # The bomb ends itself once capped, so the run is judged by the cap, never by its time limit:
    # the generous timeout only bounds a broken cap, whatever the machine's load.
    limits = sandbox.limits.replace(timeout_s=120, processes=32)
    result = run_warm(warm, sandbox, code, limits=limits)[0]
    assert result.isolation["pids_cgroup"], result.isolation
    assert result.limit_hit == "processes" and not result.timed_out, result
    assert processes_with(marker) == []
    assert warm.server_info()["children"] == 0
    assert subprocess.run(["true"]).returncode == 0


def test_output_cap(warm, sandbox):
    code = "import sys\nsys.stdout.write('x' * 2**20)\nsys.stderr.write('e' * 2**20)\n"
    limits = sandbox.limits.replace(output_bytes=10_000)
    hot = run_warm(warm, sandbox, code, limits=limits)
    assert hot[0].returncode == 0 and hot[0].output_truncated
    assert len(hot[0].stdout) == len(hot[0].stderr) == 10_000
    same_result(run_cold(sandbox, code, limits=limits), hot)


@pytest.mark.parametrize("code, limit, changes", [
    ("while True:\n    pass\n", "cpu", {"cpu_s": 1}),
    ("block = bytearray(6 * 1024**3)\nprint('allocated')\n", "memory", {"memory_mb": 4096}),
    ("with open('big.bin', 'wb') as f:\n    f.write(b'0' * 3 * 2**20)\n", "file_size", {"file_size_mb": 1}),
], ids=["cpu", "memory", "file_size"])
def test_resource_limits_like_cold(warm, sandbox, code, limit, changes):
    limits = sandbox.limits.replace(**changes)
    hot = run_warm(warm, sandbox, code, limits=limits)
    assert hot[0].limit_hit == limit, (hot[0], hot[0].stderr[-300:])
    same_result(run_cold(sandbox, code, limits=limits), hot)


def test_conversion_gives_the_same_tflite_cold_and_warm(warm, sandbox):
    code = """
        import numpy as np, tensorflow as tf, keras
        keras.utils.set_random_seed(0)
        x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)])
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([x[i:i + 1]] for i in range(16))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
        open("model.tflite", "wb").write(converter.convert())
        from ai_edge_litert.interpreter import Interpreter
        interpreter = Interpreter(model_path="model.tflite")
        interpreter.allocate_tensors()
        print("ok", interpreter.get_input_details()[0]["dtype"].__name__)
    """
    cold, hot = run_cold(sandbox, code), run_warm(warm, sandbox, code)
    assert cold[0].returncode == hot[0].returncode == 0, hot[0].stderr[-2000:]
    assert cold[0].stdout.splitlines()[-1] == hot[0].stdout.splitlines()[-1] == "ok int8"
    assert hashlib.sha256(cold[2]["model.tflite"]).hexdigest() == hashlib.sha256(hot[2]["model.tflite"]).hexdigest()
    # the same files, .keras/keras.json included (temp files have random names: just count them)
    names = lambda files: sorted(n if not n.startswith(".tmp/") else ".tmp/*" for n in files)  # noqa: E731
    assert names(cold[2]) == names(hot[2])


# --- the server's life cycle -------------------------------------------------------------------

def test_server_restarts_after_dying_between_attempts(light, sandbox):
    first = run_warm(light, sandbox, "print('one')")[0]
    os.kill(first.isolation["server_pid"], signal.SIGKILL)
    time.sleep(0.1)
    second = run_warm(light, sandbox, "print('two')")[0]
    assert first.stdout == "one\n" and second.stdout == "two\n" and second.returncode == 0
    assert second.isolation["server_pid"] != first.isolation["server_pid"]
    assert second.isolation["server_restarts"] == first.isolation["server_restarts"] + 1
    assert second.isolation["server_start_s"] > 0 and "server_start_s" not in \
        run_warm(light, sandbox, "print('three')")[0].isolation


def test_attempt_survives_the_server_dying_during_it(light, sandbox):
    server_pid = light.server_info()["pid"]
    killer = threading.Timer(0.5, os.kill, (server_pid, signal.SIGKILL))
    killer.start()
    result, _, files = run_warm(light, sandbox, """
        import time
        time.sleep(1.5)
        open("out.txt", "w").write("done")
        print("finished")
    """)
    killer.join()
    assert result.returncode == 0 and result.stdout == "finished\n" and files["out.txt"] == b"done"
    assert "server_died_during_attempt" in result.isolation
    assert run_warm(light, sandbox, "print('next')")[0].stdout == "next\n"


def test_close_stops_the_server_and_its_children(sandbox):
    toolchain = WarmPythonExecutor(sandbox, preload=("json",))
    marker = f"warmclose-{uuid.uuid4().hex}"
    outcome = []

    def attempt():
        try:
            outcome.append(run_warm(toolchain, sandbox, f"""
                import subprocess
                subprocess.run(["sh", "-c", "sleep 60", "{marker}"])
            """)[0])
        except Exception as exc:  # the attempt's status died with the server: a harness error
            outcome.append(exc)

    runner = threading.Thread(target=attempt)
    runner.start()
    deadline = time.monotonic() + 10
    while not processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    server_pid = toolchain.server_info()["pid"]
    server_dir = Path(f"/proc/{server_pid}/cwd").resolve()
    assert processes_with(marker) and server_dir.parent == sandbox.base_dir
    toolchain.close()
    runner.join(timeout=10)
    assert not runner.is_alive() and outcome
    assert processes_with(marker) == []
    assert not Path(f"/proc/{server_pid}").exists() and not server_dir.exists()
    with pytest.raises(Exception, match="closed"):
        toolchain.server_info()


def test_missing_preload_names_the_install_command(sandbox, workdir):
    toolchain = WarmPythonExecutor(sandbox, preload=("no_such_module_autopilot",))
    with pytest.raises(ToolchainMissing, match="pip install no_such_module_autopilot"):
        toolchain.execute("print(1)", workdir, {}, None)
    toolchain.close()


def test_multithreaded_server_falls_back_to_cold(light, sandbox):
    light._check_ready({"errors": {}, "threads": 3, "preloaded": {}})
    result = run_warm(light, sandbox, "print('cold anyway')")[0]
    assert result.stdout == "cold anyway\n" and result.isolation["executor"] == "cold"
    assert "3 threads" in result.isolation["warm_unavailable"]
    with pytest.raises(Exception, match="no warm server"):
        light.server_info()


def test_oversized_request_is_refused_clearly(light, sandbox, workdir):
    (workdir / "main.py").write_text("print(1)\n")
    with pytest.raises(Exception, match="exceeds the fork server"):
        light.run_python("main.py", workdir, env_extra={"BIG": "x" * 100_000})
    assert light.run_python("main.py", workdir).stdout == "1\n"  # the server is unharmed
