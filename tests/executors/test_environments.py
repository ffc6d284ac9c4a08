"""Software environments: built once per spec under a lock, cached, recorded (pip freeze); the
Raspberry Pi's one runs paper-style programs that fail in the harness's venv, and the harness's
own packages are invisible from inside it; a build failure is one line and fails (or skips) only
its case; ``pytest-autopilot envs`` lists, builds and removes them.

The builds install from PyPI: a tiny one (``six``) for the cache tests, the Pi's (~450 MB, about
40 s cold) in the user cache, shared with the sweep."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_autopilot.cases.boards import load_board
from pytest_autopilot.cases.spec import load_case
from pytest_autopilot.core.errors import ToolchainMissing
from pytest_autopilot.executors import ExecutorContext, SharedResources
from pytest_autopilot.executors import environments as envs
from pytest_autopilot.executors.local import PythonExecutor, python_executor
from pytest_autopilot.executors.sandbox import Limits, Sandbox

# the Pi environment is built on one worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("pi-env")

ROOT = Path(__file__).resolve().parents[2]
HARDWARE = ROOT / "hardware"
TINY = envs.EnvironmentSpec("tiny", f"{sys.version_info[0]}.{sys.version_info[1]}", ("six==1.16.0",), "test")

PAPER_STYLE = """\
import numpy as np
import cv2
from tflite_runtime.interpreter import Interpreter
count = int(np.array([3]))  # numpy 1 semantics: a deprecation warning there, an error under numpy 2.x
cv2.destroyAllWindows()     # raises under opencv-python-headless
print("ran with", count, np.__version__)
"""

PROBE = """\
import json, os, sys
found = {}
for name in ("pytest", "pytest_autopilot", "tensorflow", "_pytest"):
    try:
        __import__(name)
        found[name] = True
    except ImportError:
        found[name] = False
print(json.dumps({"imports": found, "prefix": sys.prefix, "path": sys.path,
                  "harness_site": os.path.exists(sys.argv[1]) if len(sys.argv) > 1 else None}))
"""


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOPILOT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(envs, "_MEMO", {})
    monkeypatch.setattr(envs, "_FAILED", {})
    return tmp_path / "cache" / "envs"


@pytest.fixture(scope="module")
def pi_env():
    board = load_board(HARDWARE, "raspberry_pi4")
    spec = envs.EnvironmentSpec(board.name, board.software.python, tuple(board.software.packages),
                                "hardware/raspberry_pi4.yaml", board.software.display)
    try:
        return envs.ensure(spec)
    except ToolchainMissing as exc:  # no registry reachable: the environment cannot exist here
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    return Sandbox(base_dir=tmp_path_factory.mktemp("env-sandbox"))


def _run(sandbox, environment, code: str, limits: Limits = Limits(timeout_s=120)):
    workdir = sandbox.new_workdir()
    try:
        return PythonExecutor(sandbox, environment).execute(code, workdir, {}, limits)
    finally:
        sandbox.cleanup(workdir)


def test_the_pi_board_declares_the_paper_software():
    software = load_board(HARDWARE, "raspberry_pi4").software
    assert software.python == "3.11" and software.display
    assert {"numpy==1.26.*", "tflite-runtime==2.14.0", "ai-edge-litert", "pandas<3"} <= set(software.packages)
    assert any(p.startswith("opencv-python>=4") for p in software.packages)  # with GUI support, not -headless
    setup = (ROOT / "scripts/setup.sh").read_text()
    assert all(lib in setup for lib in ("libgl1", "libglib2.0-0", "xvfb"))


def test_built_once_then_cached_and_frozen(cache):
    env, built = envs.build(TINY)
    assert built and env.path == cache / TINY.key and env.python.is_file()
    again, built_again = envs.build(TINY)
    assert not built_again and again.path == env.path  # a no-op
    assert "six==1.16.0" in envs.frozen_packages(TINY)
    info = json.loads((env.path / envs.SPEC_FILE).read_text())
    assert info["packages"] == ["six==1.16.0"] and info["key"] == TINY.key
    other = envs.EnvironmentSpec("tiny", TINY.python, ("six==1.15.0",), "test")
    assert other.key != TINY.key and envs.frozen_packages(other) is None  # the key covers the packages


def test_two_workers_building_at_once_build_it_once(cache):
    script = ("import json, sys\nsys.path.insert(0, sys.argv[1])\nfrom pytest_autopilot.executors import environments as e\n"
              f"spec = e.EnvironmentSpec('tiny', {TINY.python!r}, ('six==1.16.0',), 'test')\n"
              "env, built = e.build(spec)\nprint(json.dumps([built, str(env.path)]))\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(ROOT)], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [json.loads(p.communicate(timeout=600)[0].strip().splitlines()[-1]) for p in procs]
    assert sorted(r[0] for r in results) == [False, True] and results[0][1] == results[1][1]
    assert (cache / TINY.key / envs.READY).is_file()
    assert [p.name for p in cache.iterdir() if p.is_dir()] == [TINY.key]  # no half-built leftovers


def test_a_build_failure_is_one_line_naming_the_package_and_the_command(cache):
    spec = envs.EnvironmentSpec("broken", TINY.python, ("six==1.16.0", "tflite-runtime==9.9.9"), "hardware/broken.yaml")
    with pytest.raises(ToolchainMissing) as info:
        envs.ensure(spec)
    message = str(info.value)
    assert "\n" not in message and "tflite-runtime==9.9.9" in message.split("install command")[0]
    assert "environment broken (hardware/broken.yaml)" in message and "install command: python" in message
    assert "-m pip install six==1.16.0 tflite-runtime==9.9.9" in message
    assert not (cache / spec.key).exists()
    with pytest.raises(ToolchainMissing, match="tflite-runtime==9.9.9"):  # remembered: not rebuilt per item
        envs.ensure(spec)


def test_a_missing_python_version_is_one_line(cache):
    spec = envs.EnvironmentSpec("old", "3.99", ("six",), "case old")
    with pytest.raises(ToolchainMissing, match=r"needs Python 3\.99, which is not on PATH; install it"):
        envs.ensure(spec)


def test_paper_style_program_runs_in_the_pi_environment_and_fails_in_the_harness_venv(pi_env, sandbox):
    on_pi = _run(sandbox, pi_env, PAPER_STYLE)
    assert on_pi.returncode == 0, on_pi.stderr[-1500:]
    assert "ran with 3 1.26" in on_pi.stdout
    assert on_pi.isolation["environment"]["name"] == "raspberry_pi4" and on_pi.isolation["code_rewritten"] is False
    in_harness = _run(sandbox, None, PAPER_STYLE)
    assert in_harness.returncode != 0 and "environment" not in in_harness.isolation


def test_cv2_imshow_gets_a_virtual_display_in_the_pi_environment(pi_env, sandbox):
    code = "import numpy as np, cv2\ncv2.imshow('frame', np.zeros((8, 8, 3), np.uint8))\ncv2.waitKey(1)\n" \
           "cv2.destroyAllWindows()\nprint('shown')\n"
    result = _run(sandbox, pi_env, code)
    assert result.returncode == 0 and "shown" in result.stdout, result.stderr[-1500:]


def test_the_harness_packages_are_invisible_from_inside_the_environment(pi_env, sandbox):
    harness_site = next(p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix))
    result = _run(sandbox, pi_env, PROBE.replace("len(sys.argv) > 1", "True").replace("sys.argv[1]", repr(harness_site)))
    assert result.returncode == 0, result.stderr[-1500:]
    seen = json.loads(result.stdout)
    assert seen["imports"] == {"pytest": False, "pytest_autopilot": False, "tensorflow": False, "_pytest": False}
    assert Path(seen["prefix"]) == pi_env.path.resolve()
    assert not any(p.startswith(sys.prefix) for p in seen["path"])
    if result.isolation.get("fs_view") == "allow-list":  # the file system view holds only the environment's trees
        assert seen["harness_site"] is False


def test_cases_without_a_declaration_keep_the_harness_interpreter(sandbox):
    case = load_case(ROOT / "cases/pysg/shapes_video.yaml", ROOT / "prompts", HARDWARE)
    assert envs.spec_for(case) is None
    executor = python_executor(ExecutorContext(case=case, sandbox=sandbox, shared=SharedResources()))
    assert executor.environment is None and executor.script == "main.py"


def test_the_faithful_case_runs_with_the_pi_environment_and_its_provenance_says_so(pi_env):
    case = load_case(ROOT / "cases/pysg/sheeps_paper_faithful.yaml", ROOT / "prompts", HARDWARE)
    assert envs.spec_for(case).key == pi_env.spec.key
    record = envs.provenance({"cases/pysg/sheeps_paper_faithful.yaml": case})
    by_case = record["by_case"]["cases/pysg/sheeps_paper_faithful.yaml"]
    assert by_case == {"environment": "raspberry_pi4", "code_rewritten": False, "environment_key": pi_env.spec.key}
    freeze = record["environments"][pi_env.spec.key]["pip_freeze"]
    assert "numpy==1.26.4" in freeze and "tflite-runtime==2.14.0" in freeze
    assert any(line.startswith("opencv-python==4.") for line in freeze)


def test_envs_command_lists_builds_and_removes(cache, tmp_path, capsys):
    from pytest_autopilot.cli import main

    hardware = tmp_path / "hardware"
    hardware.mkdir()
    (hardware / "tiny_board.yaml").write_text(
        "display_name: Tiny\narchitecture: host\nmemory: {flash_kb: 1, ram_kb: 1}\n"
        f"software: {{python: '{TINY.python}', packages: [six==1.16.0]}}\n")
    flags = ["--autopilot-hardware-dir", str(hardware), "--autopilot-cases-dir", str(tmp_path / "cases")]
    (tmp_path / "cases").mkdir()
    assert main(["envs", "list", *flags]) == 0
    listed = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert "not built" in listed["tiny_board"] and "raspberry_pi4" in listed  # the packaged boards too
    assert main(["envs", "build", "tiny_board", *flags]) == 0
    assert "tiny_board: built in" in capsys.readouterr().out
    assert main(["envs", "build", "tiny_board", *flags]) == 0 and "already built" in capsys.readouterr().out
    assert main(["envs", "remove", "tiny_board", *flags]) == 0 and "removed" in capsys.readouterr().out
    assert not (cache / TINY.key).exists()
    assert main(["envs", "build", "nope", *flags]) == 2 and "no environment 'nope'" in capsys.readouterr().err


ENV_CASE = """\
stage: DP
description: write the answer
context: {number: 42}
environment: {python: "%s", packages: ["tflite-runtime==9.9.9"]}
steps:
  - name: code
    prompt: toy/answer.j2
    oracle: {name: toy_answer, params: {expected: "42"}}
solutions:
  reference: {code: answer/solutions/reference.py}
standin:
  - {code: [reference]}
"""


@pytest.mark.parametrize("mode", ["fail", "skip"])
def test_an_environment_that_cannot_be_built_stops_only_its_case(toy_project, pytester, cache, mode):
    (toy_project / "cases/toy/broken.yaml").write_text(ENV_CASE % TINY.python)
    (toy_project / "cases/toy/broken").symlink_to(toy_project / "cases/toy/answer")
    result = pytester.runpytest("cases", "-p", "no:xdist", "--record-mode", "once",
                                           "--autopilot-missing-toolchain", mode, "--autopilot-run-id", mode, "-rs")
    out = result.stdout.str()
    if mode == "fail":
        result.assert_outcomes(passed=1, failed=1)
        runs = json.loads((toy_project / "reports/fail/results.json").read_text())["runs"]
        error = next(r["error"] for r in runs if r["case"] == "broken")
        assert "tflite-runtime==9.9.9" in error and "install command:" in error and "\n" not in error
    else:
        result.assert_outcomes(passed=1, skipped=1)
        assert "tflite-runtime==9.9.9" in out and "install command:" in out
