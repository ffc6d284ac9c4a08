"""Invalid settings are one-line usage errors (exit 4) before anything runs, from the command line
and from an ini file alike; an unknown case field gets a "did you mean"."""

from __future__ import annotations

import pytest


def _usage_error(result) -> str:
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.outlines[-20:]
    assert "INTERNALERROR" not in result.stderr.str() and "Traceback" not in result.stderr.str()
    return result.stderr.str()


@pytest.mark.parametrize("args, message", [
    (["--autopilot-runs", "0"], "argument --autopilot-runs: expected a whole number >= 1, got '0'"),
    (["--autopilot-runs", "-1"], "argument --autopilot-runs: expected a whole number >= 1, got '-1'"),
    (["--autopilot-max-attempts", "0"], "argument --autopilot-max-attempts: expected a whole number >= 1 and <= 50, got '0'"),
    (["--autopilot-run-timeout", "-5"], "argument --autopilot-run-timeout: expected a number of seconds > 0, got '-5'"),
    (["--autopilot-llm-timeout", "0"], "argument --autopilot-llm-timeout: expected a number of seconds > 0, got '0'"),
    (["--autopilot-cpu-slots", "0"], "argument --autopilot-cpu-slots: expected a whole number >= 1, got '0'"),
    (["--autopilot-fail-under", "1.5"], "argument --autopilot-fail-under: expected a rate between 0 and 1 (or 0% and "
                                        "100%), optionally after pooled: or per-case: (e.g. per-case:0.8), got '1.5'"),
])
def test_an_invalid_flag_is_a_usage_error_naming_it(toy_project, pytester, args, message):
    err = _usage_error(pytester.runpytest("cases", "-p", "no:xdist", *args))
    # pytest prints argparse's usage line, then this one line
    assert [line for line in err.splitlines() if "error:" in line] == [f"pytest.main(): error: {message}"]


@pytest.mark.parametrize("key, value, message", [
    ("autopilot_runs", "two", "expected a whole number >= 1, got 'two'"),
    ("autopilot_max_attempts", "0", "expected a whole number >= 1 and <= 50, got '0'"),
    ("autopilot_run_timeout", "-1", "expected a number of seconds > 0, got '-1'"),
    ("autopilot_fail_on", "sometimes", "expected one of strict, errors, never"),
])
def test_an_invalid_ini_key_is_one_line(toy_project, pytester, key, value, message):
    pytester.makeini(f"[pytest]\nautopilot_cases_dir = cases\n{key} = {value}\n")
    err = _usage_error(pytester.runpytest("cases", "-p", "no:xdist"))
    (line,) = [line for line in err.splitlines() if line.strip()]
    assert line == f"ERROR: ini key {key} = {value!r} ({toy_project / 'tox.ini'}): {message}"


@pytest.mark.parametrize("field, guess", [
    ("max_attempts: 3", "field max_attempts: unknown field; did you mean 'repair.max_attempts'?"),
    ("STAGE: DP", "field STAGE: unknown field; did you mean 'stage'?"),
    ("timeouts: {run: 3}", "field timeouts.run: unknown field; did you mean 'run_s'?"),
    ("limits: {mem: 3}", "field limits.mem: unknown field; did you mean 'memory_mb'?"),
])
def test_an_unknown_case_field_gets_a_did_you_mean(toy_project, pytester, field, guess):
    case = toy_project / "cases/toy/answer.yaml"
    case.write_text(case.read_text() + field + "\n")
    result = pytester.runpytest("cases", "--co", "-q", "-p", "no:xdist")
    result.stdout.fnmatch_lines([f"*cases/toy/answer.yaml: {guess}*"])
