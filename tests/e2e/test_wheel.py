"""The wheel is complete: installed into a fresh venv that cannot see this checkout, it scaffolds
a project whose self-test and scripted sweep pass, with the packaged prompts and boards.

The venv reuses this venv's site-packages for the dependencies (a .pth file, written after the
install so pip does not see the checkout's editable install), which keeps the test offline-friendly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from test_init import assert_self_test_and_sweep_pass, run_pytest

# the module's wheel venv is built on one worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("wheel-venv")

ROOT = Path(__file__).parents[2]


def _run(*cmd, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    # build from a copy: setuptools writes build/ and *.egg-info into the source tree
    src = work / "src"
    shutil.copytree(ROOT / "pytest_autopilot", src / "pytest_autopilot", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", work / "dist", src)
    (wheel,) = (work / "dist").glob("pytest_autopilot-*.whl")
    venv = work / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    _run(sys.executable, "-m", "pip", "--python", venv / "bin/python", "install", "--no-deps", "--no-index", "-q", wheel)
    (site,) = (venv / "lib").glob("python3*/site-packages")
    (site / "harness_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def test_installed_wheel_runs_a_scaffolded_project(wheel_venv, tmp_path):
    python = str(wheel_venv / "bin/python")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = _run(python, "-c", "import pytest_autopilot; print(pytest_autopilot.__file__)", cwd=tmp_path, env=env)
    assert Path(where.stdout.strip()).is_relative_to(wheel_venv), where.stdout  # the wheel, not the checkout
    project = tmp_path / "proj"
    _run(wheel_venv / "bin/pytest-autopilot", "init", project, cwd=tmp_path, env=env)
    assert not (project / "prompts/common").exists()  # the sweep's repair prompt comes from the wheel
    assert_self_test_and_sweep_pass(python, project)

    # a packaged board by name, with no hardware/ file of the project's
    case = project / "cases/dp/sensor_means.yaml"
    case.write_text(case.read_text().replace("stage: DP\n", "stage: DP\nboard: arduino_uno\n"))
    collected = run_pytest(python, project, "--co", "cases")
    assert collected.returncode == 0 and "1 test collected" in collected.stdout, collected.stdout + collected.stderr
