"""The Raspberry Pi board's software is the paper's runtime (issue 25): its requirements pin
tensorflow 2.16.2 and numpy < 2, each pin says where it comes from, the reports repeat that, and an
archived-style program using ``tf.lite.Interpreter`` runs in the built environment (it died with
``No module named 'tensorflow'`` before). The build installs from PyPI once per machine (about
1.6 GB, a few minutes cold) into the user cache, shared with the sweep."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from pytest_autopilot.cases.boards import HardwareError, load_board, load_board_file
from pytest_autopilot.cases.spec import load_case
from pytest_autopilot.core.errors import ToolchainMissing
from pytest_autopilot.executors import environments as envs
from pytest_autopilot.executors.local import PythonExecutor
from pytest_autopilot.executors.sandbox import Limits, Sandbox

ROOT = Path(__file__).resolve().parents[2]
HARDWARE = ROOT / "hardware"
TINY_MODEL = ROOT / "cases/pysg/assets/shapes_detect.tflite"

# the shape of valid_20250820033028_psg_qwen2.5-coder:14b: TensorFlow's own TFLite interpreter
TF_LITE_PROGRAM = """\
import numpy as np
import tensorflow as tf
import tensorflow.lite as tflite

interpreter = tflite.Interpreter(model_path="model.tflite")
interpreter.allocate_tensors()
inp = interpreter.get_input_details()[0]
interpreter.set_tensor(inp["index"], np.zeros(inp["shape"], dtype=inp["dtype"]))
interpreter.invoke()
boxes = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
print("tensorflow", tf.__version__, "numpy", np.__version__, "boxes", boxes.shape)
"""

# most archived programs import the paper's tflite_runtime (the shipped solutions use ai_edge_litert, as the prompt says)
TFLITE_RUNTIME_PROGRAM = TF_LITE_PROGRAM.replace(
    "import tensorflow as tf\nimport tensorflow.lite as tflite\n", "import tflite_runtime as tf\nimport tflite_runtime.interpreter as tflite\n"
).replace('"tensorflow", tf.__version__', '"tflite_runtime", tf.__version__')


def test_the_pins_are_the_papers_requirements_and_each_names_its_source():
    software = load_board(HARDWARE, "raspberry_pi4").software
    packages = set(software.packages)
    assert {"numpy<2.0.0", "pandas==2.2.3", "tflite-runtime==2.14.0", "ai-edge-litert"} <= packages
    # tensorflow 2.16.2: the exact package on an aarch64 Pi, its CPU-only build elsewhere (no aarch64 tensorflow-cpu)
    assert 'tensorflow==2.16.2; platform_machine == "aarch64"' in packages
    assert 'tensorflow-cpu==2.16.2; platform_machine != "aarch64"' in packages
    assert set(software.sources) == packages  # every pin says where it comes from
    for pin in ("numpy<2.0.0", 'tensorflow==2.16.2; platform_machine == "aarch64"', "pandas==2.2.3"):
        assert "requirements.txt" in software.sources[pin]
    assert "numpy==2.2.3" in software.sources["numpy<2.0.0"]  # the contradicting line is named, not hidden


def test_a_source_for_no_package_is_one_line_naming_the_file(tmp_path):
    board = tmp_path / "pi_like.yaml"
    board.write_text("display_name: Pi-like\narchitecture: aarch64\nmemory: {flash_kb: 1, ram_kb: 1}\n"
                     "software:\n  python: '3.11'\n  packages: [numpy<2]\n  sources: {numpy<3: a typo}\n")
    with pytest.raises(HardwareError) as info:
        load_board_file(board)
    message = str(info.value)
    assert "pi_like.yaml" in message and "'numpy<3'" in message and "not a line of packages" in message
    assert "\n" not in message


def test_the_report_provenance_says_where_each_pin_comes_from():
    case = load_case(ROOT / "cases/pysg/sheeps_paper_faithful.yaml", ROOT / "prompts", HARDWARE)
    found = envs.provenance({"cases/pysg/sheeps_paper_faithful.yaml": case})
    env = found["environments"][found["by_case"]["cases/pysg/sheeps_paper_faithful.yaml"]["environment_key"]]
    assert env["name"] == "raspberry_pi4" and set(env["sources"]) == set(env["packages"])
    assert "tensorflow-cpu==2.16.2" in " ".join(env["packages"])


@pytest.fixture(scope="module")
def pi_env():
    spec = envs.spec_for(load_case(ROOT / "cases/pysg/sheeps_paper_faithful.yaml", ROOT / "prompts", HARDWARE))
    try:
        return envs.ensure(spec)
    except ToolchainMissing as exc:  # no registry reachable: the environment cannot exist here
        pytest.skip(str(exc))


def _run(pi_env, program: str, tmp_path: Path):
    sandbox = Sandbox(base_dir=tmp_path)
    workdir = sandbox.new_workdir()
    try:
        return PythonExecutor(sandbox, pi_env).execute(program, workdir, {"model.tflite": TINY_MODEL},
                                                       Limits(timeout_s=300, memory_mb=4096))
    finally:
        sandbox.cleanup(workdir)


def test_an_archived_tf_lite_program_runs_in_the_pi_environment(pi_env, tmp_path):
    frozen = envs.frozen_packages(pi_env.spec)
    wanted = "tensorflow==2.16.2" if platform.machine() == "aarch64" else "tensorflow-cpu==2.16.2"
    assert wanted in frozen and any(p.startswith("numpy==1.") for p in frozen)
    result = _run(pi_env, TF_LITE_PROGRAM, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "tensorflow 2.16.2 numpy 1." in result.stdout and "boxes (1," in result.stdout


def test_an_archived_tflite_runtime_program_runs_in_the_pi_environment(pi_env, tmp_path):
    result = _run(pi_env, TFLITE_RUNTIME_PROGRAM, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "tflite_runtime 2.14.0 numpy 1." in result.stdout and "boxes (1," in result.stdout
