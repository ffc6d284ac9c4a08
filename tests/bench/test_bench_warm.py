"""Warm executor benchmark: a realistic MC attempt cold vs warm, server memory, MC verdict parity.

    .venv/bin/python -m pytest tests/bench/test_bench_warm.py -p no:xdist -s

Prints the figures; asserts the issue's targets (warm median >= 3x faster than cold, no server
memory growth over 100 attempts, identical artifacts and oracle verdicts cold vs warm).
AUTOPILOT_BENCH_WARM_N sets the number of timed runs per executor (default 5).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import statistics
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pytest_autopilot.executors.limits import Limits
from pytest_autopilot.executors.local import PythonExecutor as PythonToolchain
from pytest_autopilot.executors.sandbox import Sandbox
from pytest_autopilot.executors.warm import WarmPythonExecutor

ROOT = Path(__file__).parents[2]
N = int(os.environ.get("AUTOPILOT_BENCH_WARM_N", "5"))
RSS_SLACK_KB = 2048
# As the MC cases: TF's thread pools count against the pids limit, it reserves much virtual memory.
MC_LIMITS = Limits(timeout_s=180, cpu_s=300, memory_mb=8192, file_size_mb=64, processes=256)

pytestmark = [
    pytest.mark.bench,
    pytest.mark.skipif(sys.platform != "linux", reason="the sandbox relies on Linux namespaces/cgroups"),
    pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None,
                       reason="TensorFlow is not installed; install it with: pip install tensorflow-cpu"),
]

BUILD_MODEL = """
import numpy as np, keras
keras.utils.set_random_seed(1)
rng = np.random.default_rng(1)
x = rng.normal(size=(512, 16)).astype("float32")
y = (x[:, :4].sum(axis=1) > 0).astype("int32") + 2 * (x[:, 4:8].sum(axis=1) > 0)
model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(32, activation="relu"),
                          keras.layers.Dense(16, activation="relu"), keras.layers.Dense(4, activation="softmax")])
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x, y, epochs=5, verbose=0)
model.save("model.keras")
np.save("calibration.npy", x[:100])
"""

MC_ATTEMPT = """
import numpy as np
import tensorflow as tf

model = tf.keras.models.load_model("model.keras")
calibration = np.load("calibration.npy").astype(np.float32)

def representative_dataset():
    for row in calibration:
        yield [row.reshape(1, -1)]

converter = tf.lite.TFLiteConverter.from_keras_model(model)
converter.optimizations = [tf.lite.Optimize.DEFAULT]
converter.representative_dataset = representative_dataset
converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
converter.inference_input_type = tf.int8
converter.inference_output_type = tf.int8
tflite_model = converter.convert()
with open("model_int8.tflite", "wb") as f:
    f.write(tflite_model)
print(f"wrote model_int8.tflite ({len(tflite_model)} bytes)")
"""


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    return Sandbox(MC_LIMITS, base_dir=tmp_path_factory.mktemp("bench-warm") / "sandbox")


@pytest.fixture(scope="module")
def warm(sandbox):
    toolchain = WarmPythonExecutor(sandbox)
    started = time.perf_counter()
    toolchain.server_info()
    print(f"\nwarm server start (import tensorflow once): {time.perf_counter() - started:.2f} s")
    yield toolchain
    toolchain.close()


@pytest.fixture(scope="module")
def keras_inputs(sandbox):
    """A small trained Keras model and calibration rows, built once in a cold sandbox run."""
    wd = sandbox.new_workdir(prefix="build-")
    try:
        (wd / "build.py").write_text(BUILD_MODEL)
        result = sandbox.run_python("build.py", wd)
        assert result.returncode == 0, result.stderr[-3000:]
        return {name: (wd / name).read_bytes() for name in ("model.keras", "calibration.npy")}
    finally:
        sandbox.cleanup(wd)


def timed(toolchain, sandbox, code: str, files, limits=MC_LIMITS):
    wd = sandbox.new_workdir()
    try:
        started = time.perf_counter()
        result = toolchain.execute(code, wd, files, limits)
        wall = time.perf_counter() - started
        tflite = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in wd.rglob("*.tflite")}
        return wall, result, tflite
    finally:
        sandbox.cleanup(wd)


def test_mc_attempt_warm_is_3x_faster(sandbox, warm, keras_inputs):
    cold_tc = PythonToolchain(sandbox)
    cold, hot, hashes = [], [], set()
    for i in range(N):  # interleaved, so both see the same machine load
        for name, toolchain, walls in (("cold", cold_tc, cold), ("warm", warm, hot)):
            wall, result, tflite = timed(toolchain, sandbox, MC_ATTEMPT, keras_inputs)
            assert result.returncode == 0, (name, result.stderr[-3000:])
            assert (result.isolation.get("executor") == "warm-fork") == (name == "warm")
            walls.append(wall)
            hashes.add(tflite["model_int8.tflite"])
            print(f"  run {i + 1} {name}: {wall:.2f} s")
    cold_median, warm_median = statistics.median(cold), statistics.median(hot)
    ratio = cold_median / warm_median
    print(f"MC attempt (load Keras, int8 TFLite with representative dataset), N={N} each: "
          f"cold median {cold_median:.2f} s, warm median {warm_median:.2f} s, ratio {ratio:.1f}x")
    assert len(hashes) == 1, "cold and warm runs must write byte-identical .tflite files"
    assert ratio >= 3, f"warm must be >= 3x faster: cold {cold_median:.2f} s vs warm {warm_median:.2f} s"


def test_server_memory_stays_flat_over_100_attempts(sandbox, warm):
    for _ in range(20):  # the first requests settle the heap (JSON, socket buffers)
        timed(warm, sandbox, "print('warm-up')", {})
    before = warm.server_info()
    walls = []
    for i in range(100):
        wall, result, _ = timed(warm, sandbox, f"import sys\nprint({i}, 'tensorflow' in sys.modules)\n", {})
        assert result.returncode == 0 and result.stdout == f"{i} True\n", result.stderr
        walls.append(wall)
    after = warm.server_info()
    print(f"warm server RSS before/after 100 attempts: {before['rss_kb']} / {after['rss_kb']} kB "
          f"({after['rss_kb'] - before['rss_kb']:+d} kB); gc-tracked objects {before['gc_objects']} / "
          f"{after['gc_objects']}; threads {after['threads']}; trivial attempt median "
          f"{statistics.median(walls) * 1000:.0f} ms")
    assert after["pid"] == before["pid"] and after["threads"] == 1 and after["children"] == 0
    assert after["rss_kb"] - before["rss_kb"] <= RSS_SLACK_KB


# --- the shipped MC cases: cold and warm give the same artifacts and verdicts ----------------

def _mc_solutions():
    params = []
    for path in sorted((ROOT / "cases" / "mc").glob("*.yaml")):
        from pytest_autopilot.cases.spec import load_case

        case = load_case(path, ROOT / "prompts")
        for step, ref in sorted(case.spec.solutions.reference.items()):
            params.append(pytest.param(path, step, ref, True, id=f"{path.stem}-{Path(ref).stem}"))
            for bad in case.spec.solutions.bad.get(step, []):
                params.append(pytest.param(path, step, bad.file, False, id=f"{path.stem}-{Path(bad.file).stem}"))
    return params or [pytest.param(None, None, None, None, marks=pytest.mark.skip(reason="no cases/mc yet"))]


@pytest.mark.parametrize("case_path, step_name, solution, is_reference", _mc_solutions())
def test_mc_solution_same_verdict_cold_and_warm(sandbox, warm, case_path, step_name, solution, is_reference):
    from pytest_autopilot import oracles
    from pytest_autopilot.cases.spec import load_case

    case = load_case(case_path, ROOT / "prompts")
    spec, step = case.spec, case.step(step_name)
    limits = MC_LIMITS.replace(timeout_s=spec.timeouts.run_s, cpu_s=spec.limits.cpu_s, memory_mb=spec.limits.memory_mb,
                               file_size_mb=spec.limits.file_size_mb, processes=spec.limits.processes)
    inputs = {dest: case.asset(name) for dest, name in spec.workspace.items()}
    code = case.solution_path(solution).read_text()
    outcomes = {}
    for name, toolchain in (("cold", PythonToolchain(sandbox)), ("warm", warm)):
        wd = sandbox.new_workdir()
        try:
            started = time.perf_counter()
            result = toolchain.execute(code, wd, inputs, limits)
            wall = time.perf_counter() - started
            verdict = oracles.get(step.oracle.name)(oracles.OracleContext(
                workdir=wd, execution=result, answer=code, params=dict(step.oracle.params), case_dir=case.dir,
                assets={n: case.asset(n) for n in spec.assets}, workspace=dict(spec.workspace), sandbox=sandbox,
                limits=limits, extra={"inputs": dict(inputs), "board": case.board}))
            tflite = {p.relative_to(wd).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                      for p in wd.rglob("*.tflite")}
        finally:
            sandbox.cleanup(wd)
        outcomes[name] = (result.returncode, verdict.passed, verdict.category,
                          [(c.name, c.passed, c.detail) for c in verdict.checks], tflite)
        print(f"\n  {case_path.stem}/{Path(solution).stem} {name}: {wall:.2f} s, rc {result.returncode}, "
              f"verdict {'pass' if verdict.passed else 'fail ' + str(verdict.category)}")
    assert outcomes["warm"] == outcomes["cold"]
    assert outcomes["warm"][1] is is_reference, textwrap.shorten(str(outcomes["warm"][3]), 800)


DP_ATTEMPT = """
import pandas as pd
df = pd.read_csv("data.csv").drop_duplicates().dropna()
df.groupby("label").mean().to_csv("means.csv")
"""


def test_dp_attempt_warm_pandas_vs_cold(sandbox):
    """executor: warm-pandas (the DP cases'): a small DP attempt cold vs forked from the pandas server."""
    files = {"data.csv": b"label,a,b\n" + b"".join(f"{i % 3},{i},{i * 2}\n".encode() for i in range(200))}
    cold_tc = PythonToolchain(sandbox)
    cold, hot = [], []
    with WarmPythonExecutor(sandbox, preload=("pandas",)) as pandas_server:
        pandas_server.server_info()
        for _ in range(N):  # interleaved, so both see the same machine load
            for toolchain, walls in ((cold_tc, cold), (pandas_server, hot)):
                wall, result, _ = timed(toolchain, sandbox, DP_ATTEMPT, files)
                assert result.returncode == 0, result.stderr[-3000:]
                walls.append(wall)
    cold_median, warm_median = statistics.median(cold), statistics.median(hot)
    print(f"\nDP attempt (pandas read, dedupe, group means), N={N} each: cold median {cold_median:.3f} s, "
          f"warm-pandas median {warm_median:.3f} s, ratio {cold_median / warm_median:.1f}x")
