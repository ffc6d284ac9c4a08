"""Graded metrics beside the verdict and the per-check failure table: per group over the passed
runs (mean, 95% t interval) in summary.csv, stats.json, check_failures.csv, report.html and
compare (paired difference); and metric values never reach the repair prompt."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from scipy import stats as scipy_stats

from pytest_autopilot.core.records import Attempt, Check, RunRecord, RunStatus, Verdict
from pytest_autopilot.results import stats
from pytest_autopilot.results.compare import compare
from pytest_autopilot.results.metrics import mean_interval, welch_difference
from pytest_autopilot.results.report import write_report


def _attempt(number: int, passed: bool, metrics: dict, failed: tuple[str, ...] = ()) -> Attempt:
    checks = [Check(name, False, "wrong") for name in failed] or [Check("value", True)]
    return Attempt(step="code", item=None, number=number, prompt_hash="h", prompt="p",
                   strict=Verdict.from_checks("toy", checks, metrics=metrics))


def _run(model: str, rep: int, attempts: list[Attempt], case: str = "toy") -> RunRecord:
    passed = attempts[-1].strict_passed
    return RunRecord(nodeid=f"cases/{case}.yaml::{case}[{model}-r{rep:02d}]", case=case, stage="DP", model_id=model,
                     model=model, params={}, repetition=rep, status=RunStatus.SUCCESS if passed else RunStatus.FAILURE,
                     strict_success=passed, legacy_success=passed, attempts=attempts)


@pytest.fixture
def records() -> list[RunRecord]:
    a = [_run("a", 1, [_attempt(1, False, {"accuracy": 0.10}, ("exists",)), _attempt(2, True, {"accuracy": 0.90})]),
         _run("a", 2, [_attempt(1, True, {"accuracy": 0.80, "flash_bytes": 1000})]),
         _run("a", 3, [_attempt(1, False, {"accuracy": 0.99}, ("exists", "value")),
                       _attempt(2, False, {"accuracy": 0.98}, ("value",))])]
    b = [_run("b", 1, [_attempt(1, True, {"accuracy": 0.95})]),
         _run("b", 2, [_attempt(1, True, {"accuracy": 0.85})]),
         _run("b", 3, [_attempt(1, True, {"accuracy": 0.70})])]
    return a + b


def test_mean_and_t_interval_match_scipy():
    values = [0.9, 0.8, 0.75, 0.95]
    got = mean_interval(values)
    low, high = scipy_stats.t.interval(0.95, len(values) - 1, loc=sum(values) / 4, scale=scipy_stats.sem(values))
    assert got["n"] == 4 and got["mean"] == pytest.approx(0.85)
    assert got["ci_low"] == pytest.approx(low) and got["ci_high"] == pytest.approx(high)
    one = mean_interval([3.0])
    assert one["mean"] == 3.0 and math.isnan(one["ci_low"]) and math.isnan(one["ci_high"])


def test_welch_difference_matches_scipy():
    xa, xb = [0.9, 0.8, 0.85], [0.7, 0.75, 0.6, 0.65]
    got = welch_difference(xa, xb)
    result = scipy_stats.ttest_ind(xb, xa, equal_var=False)
    low, high = result.confidence_interval(0.95)
    assert got["mean"] == pytest.approx(sum(xb) / 4 - sum(xa) / 3)
    assert got["ci_low"] == pytest.approx(low) and got["ci_high"] == pytest.approx(high)


def test_group_metrics_are_over_passed_runs_only_and_checks_are_counted(records):
    groups = {g.model_id: g for g in stats.group_stats(records)}
    a = groups["a"]
    # run 1's rejected attempt (0.10) and the failed run 3 (0.99, 0.98) do not count
    assert a.metrics["accuracy"]["n"] == 2 and a.metrics["accuracy"]["mean"] == pytest.approx(0.85)
    assert a.metrics["flash_bytes"] == {"n": 1, "mean": 1000.0, "ci_low": pytest.approx(math.nan, nan_ok=True),
                                        "ci_high": pytest.approx(math.nan, nan_ok=True)}
    assert a.check_failures == {"exists": {"runs": 2, "attempts": 2}, "value": {"runs": 1, "attempts": 2}}
    assert a.attempts_judged == 5
    assert groups["b"].check_failures == {} and groups["b"].metrics["accuracy"]["n"] == 3


def test_report_files_carry_metrics_and_the_failure_table(tmp_path, records):
    paths = write_report(tmp_path, records, {"run_id": "m"}, extended=True, html=True)
    summary = pd.read_csv(paths["summary.csv"]).set_index("model_id")
    expected = mean_interval([0.90, 0.80])
    for stat in ("n", "mean", "ci_low", "ci_high"):
        assert summary.loc["a", f"metric_accuracy_{stat}"] == pytest.approx(expected[stat])
    assert math.isnan(summary.loc["b", "metric_flash_bytes_mean"])  # b never measured it
    groups = {g["model_id"]: g for g in json.loads(paths["stats.json"].read_text())["groups"]}
    assert groups["a"]["metrics"]["accuracy"]["mean"] == pytest.approx(0.85)
    assert groups["a"]["check_failures"]["value"] == {"runs": 1, "attempts": 2}
    table = pd.read_csv(paths["check_failures.csv"])
    assert table.to_dict(orient="records") == [
        {"case": "toy", "model_id": "a", "strategy": "stateless", "check": "exists", "runs_failed": 2,
         "finished_runs": 3, "attempts_failed": 2, "attempts_judged": 5},
        {"case": "toy", "model_id": "a", "strategy": "stateless", "check": "value", "runs_failed": 1,
         "finished_runs": 3, "attempts_failed": 2, "attempts_judged": 5}]
    html = paths["report.html"].read_text()
    assert 'id="table-metrics"' in html and "0.850 [" in html and "n=2" in html
    assert 'id="table-check-failures"' in html and "1/3 runs, 2/5 attempts" in html


def test_compare_gives_the_paired_difference_of_each_metric(records):
    result = compare(records, records, a_model="a", b_model="b")
    (group,) = result.groups
    assert group.paired
    accuracy = group.metrics["accuracy"]
    # pairs where both runs passed: repetitions 1 (0.90 -> 0.95) and 2 (0.80 -> 0.85)
    assert accuracy["paired"] and accuracy["n_a"] == accuracy["n_b"] == 2
    assert accuracy["diff"] == pytest.approx(0.05) and accuracy["ci_low"] == pytest.approx(0.05)
    assert "flash_bytes" not in group.metrics  # B never measured it
    assert "metric accuracy over passed runs: A 0.85 (n=2), B 0.9 (n=2), B - A 0.05" in result.text()
    assert "(paired on repetitions)" in result.text()
    unpaired = compare(records, records[3:5], a_model="a", b_model="b")  # B has 2 repetitions: unpaired
    assert unpaired.groups[0].metrics["accuracy"]["paired"] is False
    assert unpaired.groups[0].metrics["accuracy"]["diff"] == pytest.approx(0.90 - 0.85)


METRIC_CONFTEST = """
from pytest_autopilot.core.records import Category, Check, Verdict

def pytest_autopilot_register(registry):
    registry.oracle("toy_answer", toy_answer)

def toy_answer(ctx):
    path = ctx.workdir / "out.txt"
    if not path.is_file():  # a metric on a rejected attempt: must reach neither the model nor the means
        return Verdict.from_checks("toy_answer", [Check("exists", False, "out.txt missing")], Category.ARTIFACT_MISSING,
                                   metrics={"quality": 31337.25})
    text = path.read_text().strip()
    return Verdict.from_checks("toy_answer", [Check("value", text == ctx.params["expected"], f"got {text!r}")],
                               metrics={"quality": float(text) + 0.5})
"""


def test_metrics_never_reach_the_repair_prompt_and_count_only_passed_runs(toy_project, pytester):
    (toy_project / "conftest.py").write_text(METRIC_CONFTEST)
    result = pytester.runpytest("cases", "--autopilot-runs", "3", "--record-mode", "once",
                                "--autopilot-run-id", "m", "-p", "no:xdist")
    result.assert_outcomes(passed=2, failed=1)
    runs = {r["repetition"]: r for r in json.loads((toy_project / "reports/m/results.json").read_text())["runs"]}
    assert runs[1]["attempts"][0]["strict"]["metrics"] == {"quality": 31337.25}
    repair_prompt = runs[1]["attempts"][1]["prompt"]
    assert "out.txt missing" in repair_prompt and "31337" not in repair_prompt and "quality" not in repair_prompt
    assert all("41.5" not in a["prompt"] for a in runs[3]["attempts"])  # r03's wrong answer wrote 41
    (row,) = pd.read_csv(toy_project / "reports/m/summary.csv").to_dict(orient="records")
    assert row["metric_quality_n"] == 2 and row["metric_quality_mean"] == pytest.approx(42.5)  # runs 1 and 2 only


def test_show_prints_each_groups_metrics_and_failed_checks(tmp_path, records, capsys):
    from pytest_autopilot import cli

    write_report(tmp_path / "r", records, {"run_id": "r"})
    assert cli.main(["show", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    a_metrics = mean_interval([0.90, 0.80])
    assert (f"  metrics over passed runs (mean [95% CI]): accuracy 0.85 [{a_metrics['ci_low']:.4g}, "
            f"{a_metrics['ci_high']:.4g}] n=2; flash_bytes 1000 [n/a, n/a] n=1") in out
    assert "  checks failed (runs failing it / finished runs): exists 2/3, value 1/3" in out
