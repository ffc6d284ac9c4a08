"""Exit statuses that say what happened (results/gate.py): 0 every run passed the gate, 1 the
models failed the strict oracle, 6 harness or set-up trouble (here: stale cassettes, a case file
that cannot be loaded), and the gate options with their precedence (command line > ini)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pytest_autopilot import cli

EXIT_SETUP = 6


def _run(pytester, *args):
    # a subprocess: an in-process run that executes items leaves this process unable to find
    # pytest's entry-point plugins for the next in-process run
    return pytester.runpytest("cases", "-p", "no:xdist", "-p", "no:cacheprovider", *args)


def _gate_line(result) -> str:
    (line,) = [line for line in result.outlines if line.startswith("gate:")]
    return line


@pytest.fixture(scope="module")
def recording(tmp_path_factory, record_toy) -> Path:
    """The toy case's three stand-in runs, recorded once for the module: r01 and r02 pass, r03 fails its
    strict oracle (exit 1)."""
    root = tmp_path_factory.mktemp("toy-recording")
    out = record_toy(root, runs=3)
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-2000:]
    return root


@pytest.fixture
def recorded(recording, toy_project):
    """A copy of the recording's cassettes and report in this test's toy project."""
    for folder in ("cassettes", "reports/rec"):
        shutil.copytree(recording / folder, toy_project / folder)
    return toy_project


def test_all_runs_pass_exit_0(recorded, pytester):
    result = _run(pytester, "--autopilot-runs", "2", "--record-mode", "none")
    assert result.ret == 0
    assert not [line for line in result.outlines if line.startswith("gate:")]


def test_a_model_failure_exits_1_and_says_so(recorded, pytester):
    result = _run(pytester, "--autopilot-runs", "3", "--record-mode", "none")
    assert result.ret == 1
    assert _gate_line(result) == ("gate: 1 of 3 run(s) failed the strict oracle (exit 1; --autopilot-fail-on "
                                  "errors makes that a result)")


def test_fail_on_errors_makes_model_failures_a_result(recorded, pytester):
    assert _run(pytester, "--autopilot-runs", "3", "--record-mode", "none", "--autopilot-fail-on", "errors").ret == 0


@pytest.mark.parametrize("threshold, status", [("66%", 0), ("pooled:0.7", 1), ("per-case:70%", 1)])
def test_fail_under_gates_on_the_strict_rate(recorded, pytester, threshold, status):
    result = _run(pytester, "--autopilot-runs", "3", "--record-mode", "none", "--autopilot-fail-under", threshold)
    assert result.ret == status
    line = _gate_line(result)
    assert ("2/3 = 0.667" in line and "under --autopilot-fail-under" in line) if status else "at or above" in line
    assert ("per case" if threshold.startswith("per-case") else "pooled") in line


def test_stale_cassettes_are_set_up_trouble_exit_6_whatever_fail_on_says(recorded, pytester, capsys):
    """The issue's prompt-edit scenario end to end: the replay after the edit stops with cassette
    misses (exit 6, not 1), and comparing it with the run before is "not comparable" (exit 6, not 0)."""
    (recorded / "prompts/toy/answer.j2").write_text("Write a Python program that writes {{ number }} to answer.txt.\n")
    for fail_on in ("strict", "errors"):
        result = _run(pytester, "--autopilot-runs", "3", "--record-mode", "none", "--autopilot-fail-on", fail_on,
                      "--autopilot-run-id", f"after-edit-{fail_on}")
        assert result.ret == EXIT_SETUP, fail_on
        assert _gate_line(result) == ("gate: set-up trouble, not a model result (exit 6): "
                                      "3 run(s) stopped by cassette_miss")
    capsys.readouterr()
    assert cli.main(["compare", str(recorded / "reports/rec"), str(recorded / "reports/after-edit-strict"),
                     "--fail-on-regression"]) == EXIT_SETUP
    out, err = capsys.readouterr()
    assert "NOT COMPARABLE: B has 3 cassette_miss run(s)" in out and "2/3" in out and "0/0" in out
    assert "gate: not comparable (exit 6)" in err
    # never: the report is written, the job does not fail
    assert _run(pytester, "--autopilot-runs", "3", "--record-mode", "none", "--autopilot-fail-on", "never").ret == 0


def test_a_case_file_that_cannot_be_loaded_is_set_up_trouble(recorded, pytester):
    (recorded / "cases/toy/broken.yaml").write_text("stage: DP\nsteps: 3\n")
    result = _run(pytester, "--autopilot-runs", "2", "--record-mode", "none", "--autopilot-fail-on", "errors")
    assert result.ret == EXIT_SETUP
    assert "1 case file(s) could not be loaded" in _gate_line(result)


def test_the_command_line_beats_the_ini_key(recorded, pytester):
    pytester.makeini("[pytest]\nautopilot_cases_dir = cases\nautopilot_fail_on = errors\nautopilot_fail_under = 0.9\n")
    result = _run(pytester, "--autopilot-runs", "3", "--record-mode", "none")
    assert result.ret == 0  # the ini's fail_on errors: failures are a result, and the unused threshold is named
    assert _gate_line(result) == ("gate: --autopilot-fail-on errors: model failures are a result, "
                                  "--autopilot-fail-under 0.9 not applied (exit 0)")
    result = _run(pytester, "--autopilot-runs", "3", "--record-mode", "none", "--autopilot-fail-on", "strict")
    assert result.ret == 1 and "under --autopilot-fail-under 0.9" in _gate_line(result)  # the ini's threshold
    result = _run(pytester, "--autopilot-runs", "3", "--record-mode", "none", "--autopilot-fail-on", "strict",
                  "--autopilot-fail-under", "0.5")
    assert result.ret == 0


def test_error_runs_never_enter_a_rate(recorded, pytester):
    (recorded / "prompts/toy/answer.j2").write_text("Write a Python program that writes {{ number }} to answer.txt.\n")
    _run(pytester, "--autopilot-runs", "3", "--record-mode", "none", "--autopilot-run-id", "stale")
    folder = recorded / "reports/stale"
    (row,) = json.loads((folder / "summary.json").read_text())["summary"]
    assert (row["runs"], row["finished"], row["errors"], row["strict_rate"], row["strict_ci_low"]) == (3, 0, 3, None, None)
    (group,) = json.loads((folder / "stats.json").read_text())["groups"]
    assert group["error_categories"] == {"cassette_miss": 3} and group["final_categories"]["cassette_miss"] == 0
