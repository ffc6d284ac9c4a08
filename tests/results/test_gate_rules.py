"""The gate's rules on their own (results/gate.py); tests/results/test_exit_status.py runs them in sessions."""

from __future__ import annotations

from pytest_autopilot.core.records import RunRecord, RunStatus
from pytest_autopilot.results.gate import EXIT_MODEL_FAILED, EXIT_OK, EXIT_SETUP, session_status, setup_problems
from pytest_autopilot.settings import Threshold, parse_threshold


def run(case: str, rep: int, status: str, error: str | None = None) -> RunRecord:
    return RunRecord(nodeid=f"cases/{case}.yaml::{case}[m-r{rep:02d}]", case=case, stage="DP", model_id="m",
                     model="x/m", params={}, repetition=rep, status=status,
                     strict_success=status == RunStatus.SUCCESS, legacy_success=False, error=error)


OK, FAIL = RunStatus.SUCCESS, RunStatus.FAILURE


def test_thresholds_parse_pooled_and_per_case():
    assert parse_threshold("0.8") == Threshold(0.8) == parse_threshold("pooled:80%")
    assert parse_threshold("per-case:75%") == Threshold(0.75, per_case=True)
    assert str(Threshold(0.75, per_case=True)) == "per-case:0.75"


def test_set_up_trouble_is_named_by_kind():
    records = [run("a", 1, RunStatus.ERROR, "cassette_miss: no cassette"), run("a", 2, RunStatus.ERROR, "odd"),
               run("a", 3, RunStatus.CRASHED), run("a", 4, RunStatus.INCOMPLETE), run("a", 5, OK)]
    assert setup_problems(records, not_run=1, lost=2, failed_without_record=1) == [
        "1 run(s) stopped by cassette_miss", "1 run(s) stopped by harness_error", "3 run(s) crashed",
        "1 run(s) incomplete", "1 case item(s) failed before their run was recorded",
        "1 case file(s) could not be loaded"]


def test_per_case_holds_every_group_to_the_threshold_pooled_only_the_total():
    # a: 4/4, b: 1/4; pooled 5/8 = 0.625
    records = [run("a", r, OK) for r in range(1, 5)] + [run("b", r, OK if r == 1 else FAIL) for r in range(1, 5)]
    assert session_status(records, "strict", Threshold(0.6), 0, 0, 0, False)[0] == EXIT_OK
    status, line = session_status(records, "strict", Threshold(0.6, per_case=True), 0, 0, 0, False)
    assert status == EXIT_MODEL_FAILED and "b × m × stateless 1/4 = 0.250" in line and "a × m" not in line
    assert session_status(records, "strict", None, 0, 0, 0, False)[0] == EXIT_MODEL_FAILED


def test_other_tests_failing_keep_exit_1_unless_set_up_trouble_or_never():
    passed = [run("a", 1, OK)]
    assert session_status(passed, "errors", None, 0, 0, 0, True) == (
        EXIT_MODEL_FAILED, "gate: tests that are not case items failed (exit 1)")
    assert session_status(passed, "never", None, 0, 0, 0, True) == (EXIT_OK, None)
    assert session_status(passed, "strict", None, 0, 1, 0, True)[0] == EXIT_SETUP
