"""scripts/sweep.sh passes the gate's exit status through: runs that fail their strict oracle are a
result (0), stale cassettes are set-up trouble (6), where it used to turn every exit 1 into 0. The
script runs as shipped on the toy project; only its first step, scripts/setup.sh (installing
packages), is replaced by a no-op, since the shared virtualenv is already built."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[2]


def _sweep(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    # -n 0 after the script's -n auto: the exit status is under test here, not xdist (two workers each import litellm)
    return subprocess.run(["bash", "scripts/sweep.sh", "--autopilot-llm", "scripted/standin", "--autopilot-runs", "3",
                           "-n", "0", *args], cwd=project, capture_output=True, text=True, timeout=900, env=env)


def test_sweep_exits_0_on_model_failures_and_6_on_stale_cassettes(toy_project, pytester):
    (toy_project / "scripts").mkdir()
    shutil.copy(ROOT / "scripts/sweep.sh", toy_project / "scripts/sweep.sh")
    (toy_project / "scripts/setup.sh").write_text("true\n")
    (toy_project / ".venv").symlink_to(ROOT / ".venv")
    recorded = pytester.runpytest("cases", "-p", "no:xdist", "--autopilot-runs", "3", "--record-mode", "once")
    recorded.assert_outcomes(passed=2, failed=1)  # r03 fails its strict oracle

    done = _sweep(toy_project)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "sweep finished; report: reports/" in done.stdout

    (toy_project / "prompts/toy/answer.j2").write_text("Write a Python program that writes {{ number }} to answer.txt.\n")
    done = _sweep(toy_project)
    assert done.returncode == 6, done.stdout[-3000:] + done.stderr[-2000:]
    assert "gate: set-up trouble, not a model result (exit 6): 3 run(s) stopped by cassette_miss" in done.stdout
    assert "sweep finished with set-up trouble" in done.stderr
