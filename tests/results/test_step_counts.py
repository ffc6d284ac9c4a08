"""Per-run and per-group numbers of multi-step runs (issue 22): attempts per step and repairs
apart (a 9-step pipeline passed at once is 1.0 attempts per step and 0 repairs, not "9.0
attempts"), a run that stopped early is never a silent failure, and the stuck measure per group
in summary.csv, stats.json, the terminal summary and the HTML page."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pytest_autopilot.core.records import Attempt, Check, RunRecord, RunStatus, Verdict
from pytest_autopilot.results import report, stats


def _attempt(step, item, number, passed, first_error=None, stuck=False) -> Attempt:
    verdict = Verdict.from_checks("oracle", [Check("value", passed, "" if passed else "wrong")])
    return Attempt(step=step, item=item, number=number, prompt_hash="h", prompt="p", code="x = 1",
                   strict=verdict, legacy=Verdict.from_checks("legacy", [Check("exit_code_0", True)]),
                   category=None if passed else "semantic_mismatch", first_error=first_error, stuck=stuck)


def _record(rep, attempts, strict, legacy, **extra) -> RunRecord:
    return RunRecord(nodeid=f"cases/dp/p.yaml::p[m-r{rep:02d}]", case="p", stage="DP", model_id="m", model="local/m",
                     params={}, repetition=rep, status=RunStatus.SUCCESS if strict else RunStatus.FAILURE,
                     strict_success=strict, legacy_success=legacy, attempts=attempts, **extra)


def _records() -> list[RunRecord]:
    at_once = [_attempt("plan", None, 1, True)] + [_attempt("ops", f"op{i}", 1, True) for i in range(8)]
    plan_failed = [_attempt("plan", None, n, False, "check operation_count failed: 6 operations", stuck=n > 1)
                   for n in (1, 2, 3)]
    # a record as older versions wrote it: a legacy success although the pipeline stopped at its plan
    stopped = _record(2, plan_failed, False, True, stopped_at_step=1, stopped_step="plan")
    return [_record(1, at_once, True, True), stopped]


def test_attempts_per_step_and_repairs_are_apart_from_llm_calls():
    runs = stats.runs_frame(_records())
    assert runs[["attempts", "steps_run", "repairs"]].values.tolist() == [[9, 9, 0], [3, 1, 2]]
    (group,) = stats.group_stats(_records())
    assert group.mean_attempts == 6.0  # LLM calls per run
    assert group.mean_attempts_per_step == pytest.approx((1.0 + 3.0) / 2) and group.mean_repairs == 1.0


def test_a_run_stopped_early_is_no_silent_failure_and_says_where_it_stopped():
    runs = stats.runs_frame(_records())
    assert runs["silent_failure"].tolist() == [False, False]
    assert runs["stopped_at_step"].tolist()[1] == 1 and runs["stopped_step"].tolist()[1] == "plan"
    (group,) = stats.group_stats(_records())
    assert group.silent_failures == 0 and group.stopped_early == 1


def test_stuck_retries_per_group_in_every_report_file(tmp_path):
    paths = report.write_report(tmp_path, _records(), {"run_id": "t"}, extended=True, html=True)
    summary = pd.read_csv(paths["summary.csv"])
    assert summary.loc[0, ["stuck_retries", "stuck_rate", "mean_attempts_per_step", "mean_repairs", "stopped_early"]
                       ].tolist() == [2, 1.0, 2.0, 1.0, 1]
    (group,) = json.loads(paths["stats.json"].read_text())["groups"]
    assert (group["stuck_retries"], group["retries"], group["stuck_rate"]) == (2, 2, 1.0)
    line = next(ln for ln in report.terminal_lines(stats.summary_frame(stats.group_stats(_records()))) if ln.startswith("p "))
    assert "2 (1.00)" in line and "2.0 (1.0)" in line
    html = paths["report.html"].read_text()
    assert "stuck retries (same first error)" in html and "1.000 (2/2)" in html
    assert "stopped at step 1 of ? (plan)" in html
    runs = pd.read_csv(paths["runs.csv"])
    assert runs["stopped_at_step"].tolist()[1] == 1 and runs["stopped_step"].tolist()[1] == "plan"


def test_reports_from_before_the_stuck_measure_say_not_measured():
    old = _records()
    for rec in old:
        for a in rec.attempts:
            a.first_error, a.stuck = None, False
    (group,) = stats.group_stats(old)
    assert group.stuck_retries == 0 and group.stuck_rate != group.stuck_rate  # NaN: unknown, not 0
