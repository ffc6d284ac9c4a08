"""Partial results are honest: runs that did not finish (crashed, incomplete) have no verdict, so
they are left out of every rate and counted in their own columns; a crashed run stays crashed."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from pytest_autopilot import cli
from pytest_autopilot.core.records import Attempt, Category, Check, RunRecord, RunStatus, Verdict
from pytest_autopilot.results import html as html_report
from pytest_autopilot.results import merge, report, stats
from pytest_autopilot.results.journal import Journal, read_journals

CRASHED, INCOMPLETE = RunStatus.CRASHED, RunStatus.INCOMPLETE


def att(number: int, ok: bool, legacy_ok: bool | None = None) -> Attempt:
    category = None if ok else Category.SEMANTIC_MISMATCH
    return Attempt(step="code", item=None, number=number, prompt_hash="h", prompt="p", code=f"v{number}",
                   strict=Verdict.from_checks("strict", [Check("right", ok)], category),
                   legacy=Verdict.from_checks("legacy", [Check("exit0", ok if legacy_ok is None else legacy_ok)]),
                   category=category, total_tokens=10, cost_usd=0.0, latency_s=1.0)


def run(rep: int, status: str, attempts: list[Attempt], *, legacy: bool | None = None, case: str = "fir") -> RunRecord:
    ok = status == RunStatus.SUCCESS
    return RunRecord(nodeid=f"cases/{case}.yaml::{case}[m-r{rep:02d}]", case=case, stage="DP", model_id="m",
                     model="x/m", params={}, repetition=rep, status=status, strict_success=ok,
                     legacy_success=ok if legacy is None else legacy, attempts=attempts)


@pytest.fixture
def partial() -> list[RunRecord]:
    """6 runs: 3 successes (after 1, 1 and 2 attempts), 1 silent failure, 1 crashed, 1 incomplete."""
    return [
        run(1, RunStatus.SUCCESS, [att(1, True)]),
        run(2, RunStatus.SUCCESS, [att(1, True)]),
        run(3, RunStatus.SUCCESS, [att(1, False), att(2, True)]),
        run(4, RunStatus.FAILURE, [att(1, False), att(2, False, legacy_ok=True)], legacy=True),
        run(5, CRASHED, [att(1, False)]),
        run(6, INCOMPLETE, []),
    ]


def test_unfinished_runs_leave_the_denominators(partial):
    (g,) = stats.group_stats(partial)
    assert (g.runs, g.finished, g.crashed, g.incomplete) == (6, 4, 1, 1)
    assert (g.successes, g.rate) == (3, 0.75)  # not 3/6: the unfinished runs are not failures
    assert (g.ci_low, g.ci_high) == pytest.approx(stats.wilson_interval(3, 4))
    assert (g.legacy_successes, g.legacy_rate) == (4, 1.0)
    assert (g.legacy_ci_low, g.legacy_ci_high) == pytest.approx(stats.wilson_interval(4, 4))
    assert g.silent_failure_rate == 0.25  # 1 of 4
    assert sorted(g.pass_at_k) == [1, 2, 3, 4]
    assert g.pass_at_k[1] == 0.75 and g.pass_hat_k[2] == pytest.approx(3 / 6)  # C(3,2)/C(4,2)
    assert g.success_by_attempt == pytest.approx([0.5, 0.75])  # of the 4 finished runs
    assert g.final_categories[stats.UNKNOWN_CATEGORY] == 0  # only run 4 failed
    assert sum(g.final_categories.values()) == 1


def test_unfinished_runs_have_their_own_columns_everywhere(tmp_path, partial):
    paths = report.write_report(tmp_path, partial, {"run_id": "p"}, complete=False, extended=True, html=True)
    row = pd.read_csv(paths["summary.csv"]).iloc[0]
    assert (row.runs, row.finished, row.crashed, row.incomplete, row.errors) == (6, 4, 1, 1, 0)
    assert row.strict_rate == 0.75 and row.strict_ci_low == pytest.approx(stats.wilson_interval(3, 4)[0])
    assert json.loads(paths["summary.json"].read_text())["summary"][0]["incomplete"] == 1
    (group,) = json.loads(paths["stats.json"].read_text())["groups"]
    assert (group["runs"], group["finished"], group["crashed"], group["incomplete"]) == (6, 4, 1, 1)
    assert group["rate"] == 0.75 and sorted(group["pass_at_k"]) == ["1", "2", "3", "4"]

    line = report.terminal_lines(stats.summarise(partial))[2]
    assert "1/1/0" in line and "0.75 [" in line  # crash/inc/err, and the rate over finished runs

    page = paths["report.html"].read_text()
    table = page.split('id="table-summary"')[1].split("</table>")[0]
    cells = [c.split("</td>")[0] for c in table.split('<td class="n">')[1:6]]
    assert cells == ["6", "4", "1", "1", "3"]  # runs, finished, crashed, incomplete, strict ok
    assert "0.750" in table and "n=4" in page.split('id="chart-rates"')[1].split("</svg>")[0]


def test_a_group_with_no_finished_run_has_no_rates():
    recs = [run(1, CRASHED, []), run(2, INCOMPLETE, [att(1, False)])]
    (g,) = stats.group_stats(recs)
    assert (g.runs, g.finished, g.crashed, g.incomplete) == (2, 0, 1, 1)
    assert all(math.isnan(v) for v in (g.rate, g.ci_low, g.legacy_rate, g.silent_failure_rate))
    assert g.pass_at_k == {} and g.success_by_attempt == []
    assert "n/a" in report.terminal_lines(stats.summarise(recs))[2]
    page = html_report.render_html(recs, {"run_id": "x"})
    # what stopped the runs, never an empty interval (tests/results/test_compare_gate.py covers the banner)
    assert "no verdict: 1 crashed, 1 incomplete" in page.split('id="table-summary"')[1].split("</table>")[0]
    assert "no verdict: 1 crashed, 1 incomplete" in page.split('id="chart-rates"')[1].split("</svg>")[0]


def test_merge_keeps_the_statuses_of_unfinished_runs(tmp_path, partial):
    report.write_report(tmp_path / "s1", partial[:4], {"run_id": "s1"})
    report.write_report(tmp_path / "s2", partial[4:], {"run_id": "s2"}, complete=False)
    paths = merge.merge_results([tmp_path / "s1", tmp_path / "s2"], tmp_path / "all")
    row = pd.read_csv(paths["summary.csv"]).iloc[0]
    assert (row.runs, row.finished, row.crashed, row.incomplete, row.strict_rate) == (6, 4, 1, 1, 0.75)
    merged, _, complete = report.load_results(paths["results.json"])
    assert [r.status for r in merged][4:] == [CRASHED, INCOMPLETE] and complete is False


def test_compare_leaves_unfinished_runs_out_and_stays_paired(tmp_path, capsys):
    a = [run(r, RunStatus.SUCCESS, [att(1, True)]) for r in range(1, 7)]
    b = [run(r, RunStatus.SUCCESS, [att(1, True)]) for r in range(1, 4)] + [
        run(r, CRASHED, []) for r in range(4, 7)]  # a worker died: no verdict, not 3 failures
    for name, recs in (("a", a), ("b", b)):
        report.write_report(tmp_path / name, recs, {"run_id": name})
    # runs without a verdict make the comparison "not comparable": its gate fails with exit 6 (results.gate)
    assert cli.main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--fail-on-regression", "--json"]) == 6
    data = json.loads(capsys.readouterr().out)
    (g,) = data["groups"]
    assert g["paired"] and (g["pairs"], g["n_b"], g["successes_b"], g["rate_b"]) == (3, 3, 3, 1.0)
    assert g["p_value"] == 1.0 and not data["regressions"]
    assert data["not_comparable"] == ["B has 3 crashed run(s)"]


# --------------------------------------------------------------------------------------------
# a crashed run stays crashed


def test_a_run_whose_worker_died_stays_crashed_when_ctrl_c_follows(tmp_path):
    killed, interrupted = run(1, INCOMPLETE, []), run(2, INCOMPLETE, [])
    worker = Journal(tmp_path / "gw1.jsonl")  # SIGKILLed mid-run: a start, no finish
    worker.start(killed)
    worker.attempt(killed.nodeid, att(1, False))
    worker.close()
    other = Journal(tmp_path / "gw0.jsonl")  # then Ctrl+C stops this one mid-run
    other.start(interrupted)
    other.close()
    controller = Journal(tmp_path / "master.jsonl")  # xdist told the controller gw1 died running it
    controller.crashed(killed.nodeid)
    controller.close()
    runs = read_journals(tmp_path, unfinished_status=INCOMPLETE)  # the session was interrupted
    assert runs[killed.nodeid].status == CRASHED and len(runs[killed.nodeid].attempts) == 1
    assert runs[interrupted.nodeid].status == INCOMPLETE
