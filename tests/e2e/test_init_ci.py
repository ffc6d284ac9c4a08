"""The CI workflow ``pytest-autopilot init`` writes works on the scaffold: each of its ``run:`` steps,
in order, after the user has recorded the example's cassettes and made the baseline as the
scaffold's baselines/README.md says (issue 24)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import yaml

from pytest_autopilot import cli

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(os.sys.executable).parent


def _sh(command: str, cwd: Path) -> subprocess.CompletedProcess:
    """A step as the runner runs it (bash, CI set), with this checkout's package and console scripts."""
    env = {**os.environ, "CI": "true", "PYTHONPATH": str(ROOT), "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(["bash", "-e", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_scaffolds_workflow_runs_its_steps_in_order(tmp_path, capsys):
    project = tmp_path / "proj"
    assert cli.main(["init", str(project)]) == 0
    capsys.readouterr()
    workflow = yaml.safe_load((project / ".github/workflows/autopilot.yml").read_text())
    steps = workflow["jobs"]["autopilot"]["steps"]
    runs = [(s.get("name"), s["run"]) for s in steps if "run" in s]
    assert [name for name, _ in runs] == ["install", "cassette check", "self-test", "replay", "compare with the baseline"]
    assert workflow["jobs"]["autopilot"]["env"]["CI"] == "true" and "on" in workflow
    assert "--record-mode=none" in runs[3][1] and "--fail-on-regression" in runs[4][1]

    # what a user does before the first push: record the example's cassettes, make the baseline
    assert _sh("pytest cases -p no:xdist -q", project).returncode == 0
    readme = (project / "baselines/README.md").read_text()
    (make_baseline,) = re.findall(r"^    (pytest cases .*)$", readme, flags=re.M)
    made = _sh(make_baseline, project)
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr
    assert (project / "baselines/main/results.json").is_file()
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    ignored = subprocess.run(["git", "check-ignore", "--no-index", "-v", "baselines/main/results.json", "reports/x/results.json"],
                             cwd=project, capture_output=True, text=True)
    assert "reports/x/results.json" in ignored.stdout and "!baselines/*/results.json" in ignored.stdout

    for name, command in runs:
        if name == "install":  # `pip install pytest-autopilot` from PyPI: here this checkout is the package
            continue
        done = _sh(command, project)
        assert done.returncode == 0, (name, done.stdout[-3000:], done.stderr[-2000:])
    assert (project / "reports/ci/results.json").is_file()
    assert "compare A = main  vs  B = ci" in done.stdout and "0 significant regression(s)" in done.stdout
