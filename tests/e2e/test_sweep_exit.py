"""scripts/sweep.sh passes the gate's exit status through: runs that fail their strict oracle are a
result (0), stale cassettes are set-up trouble (6), where it used to turn every exit 1 into 0. The
script runs as shipped on the toy project; only its first step, scripts/setup.sh (installing
packages), is replaced by a no-op, since the shared virtualenv is already built."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[2]


def _sweep(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    # -n 0 after the script's -n auto: the exit status is under test here, not xdist (two workers each import litellm)
    return subprocess.run(["bash", "scripts/sweep.sh", *args, "-n", "0"], cwd=project, capture_output=True, text=True,
                          timeout=900, env=env)


def _with_sweep_script(project: Path) -> None:
    (project / "scripts").mkdir()
    shutil.copy(ROOT / "scripts/sweep.sh", project / "scripts/sweep.sh")
    (project / "scripts/setup.sh").write_text("true\n")
    (project / ".venv").symlink_to(ROOT / ".venv")


def test_the_default_sweep_replays_every_recorded_repetition(toy_project, pytester):
    """The main job's defaults replay each recorded run, also beyond the stand-in's 8 (real-model cells
    have 10): it used to ask for 8 repetitions and so left r09 and r10 out."""
    _with_sweep_script(toy_project)
    pytester.runpytest("cases", "-p", "no:xdist", "--autopilot-runs", "10", "--record-mode", "once").assert_outcomes(
        passed=7, failed=3)
    done = _sweep(toy_project, "--autopilot-run-id", "all")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "kept 10 run(s) with a cassette (every recorded repetition of each case)" in done.stdout
    runs = json.loads((toy_project / "reports/all/results.json").read_text())["runs"]
    assert sorted(r["repetition"] for r in runs) == list(range(1, 11))


def test_sweep_exits_0_on_model_failures_and_6_on_stale_cassettes(toy_project, pytester):
    _with_sweep_script(toy_project)
    recorded = pytester.runpytest("cases", "-p", "no:xdist", "--autopilot-runs", "3", "--record-mode", "once")
    recorded.assert_outcomes(passed=2, failed=1)  # r03 fails its strict oracle

    done = _sweep(toy_project, "--autopilot-llm", "scripted/standin", "--autopilot-runs", "3")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "sweep finished; report: reports/" in done.stdout

    (toy_project / "prompts/toy/answer.j2").write_text("Write a Python program that writes {{ number }} to answer.txt.\n")
    done = _sweep(toy_project, "--autopilot-llm", "scripted/standin", "--autopilot-runs", "3")
    assert done.returncode == 6, done.stdout[-3000:] + done.stderr[-2000:]
    assert "gate: set-up trouble, not a model result (exit 6): 3 run(s) stopped by cassette_miss" in done.stdout
    assert "sweep finished with set-up trouble" in done.stderr
