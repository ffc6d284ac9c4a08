"""``pytest-autopilot init``: the scaffolded project passes its self-test and a scripted sweep."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pytest_autopilot import cli


def run_pytest(python: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """pytest started in ``cwd`` as a project's user would: no PYTHONPATH, no PYTEST_ADDOPTS."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    return subprocess.run([python, "-m", "pytest", "-p", "no:xdist", "-q", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def assert_self_test_and_sweep_pass(python: str, project: Path) -> None:
    self_test = run_pytest(python, project, "--autopilot-self-test", "-rA")
    assert self_test.returncode == 0, self_test.stdout + self_test.stderr
    assert "3 passed" in self_test.stdout  # the reference and both bad solutions, each judged as declared
    # the example shows how a known-bad solution names the check that must catch it
    assert "2/2 known-bad caught by their declared check, 0 declare none" in self_test.stdout
    sweep = run_pytest(python, project, "cases")
    assert sweep.returncode == 0, sweep.stdout + sweep.stderr
    assert "1 passed" in sweep.stdout and "sensor_means" in sweep.stdout
    (report,) = (project / "reports").glob("*/results.json")
    assert (report.parent / "report.html").is_file()  # the packaged HTML templates


def test_init_scaffolds_a_project_that_passes_self_test_and_sweep(tmp_path, capsys):
    project = tmp_path / "proj"
    assert cli.main(["init", str(project)]) == 0
    for rel in ("pyproject.toml", ".gitignore", "cases/dp/sensor_means.yaml", "prompts/dp/sensor_means.j2",
                "cases/dp/sensor_means/solutions/reference.py", "prompts/README.md", "cassettes/README.md",
                "hardware/README.md"):
        assert (project / rel).is_file(), rel
    assert "autopilot_cases_dir" in (project / "pyproject.toml").read_text()
    assert "reports/" in (project / ".gitignore").read_text()
    assert_self_test_and_sweep_pass(sys.executable, project)
    # the ini file fixes pytest's rootdir, so the case paths resolve from anywhere inside or above it
    for cwd, arg in ((project / "cases/dp", "."), (tmp_path, "proj/cases/dp/sensor_means.yaml")):
        collected = run_pytest(sys.executable, cwd, "--co", arg)
        assert "1 test collected" in collected.stdout, (cwd, arg, collected.stdout + collected.stderr)


def test_init_never_overwrites(tmp_path, capsys):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'mine'\n")
    assert cli.main(["init", str(tmp_path)]) == 1
    assert "already has pyproject.toml" in capsys.readouterr().out
    assert (tmp_path / "pyproject.toml").read_text() == "[project]\nname = 'mine'\n"
    assert not (tmp_path / "cases").exists()
