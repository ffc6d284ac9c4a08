"""``compare`` that can gate: runs without a verdict make a comparison "not comparable" (exit 6), a
pooled paired test over every (case, repetition) pair, the power of the design, and ``--max-drop``."""

from __future__ import annotations

import json

import pytest
import scipy.stats

from pytest_autopilot import cli
from pytest_autopilot.core.records import Attempt, Category, Check, RunRecord, RunStatus, Verdict
from pytest_autopilot.results import report
from pytest_autopilot.results.compare import compare
from pytest_autopilot.results.pooled import CMH, MCNEMAR_POOLED, min_discordant

EXIT_SETUP = 6


def run(case: str, rep: int, ok: bool, status: str | None = None, error: str | None = None) -> RunRecord:
    status = status or (RunStatus.SUCCESS if ok else RunStatus.FAILURE)
    category = None if ok else Category.SEMANTIC_MISMATCH
    attempts = [] if status == RunStatus.ERROR else [Attempt(
        step="code", item=None, number=1, prompt_hash="h", prompt="p", code="c",
        strict=Verdict.from_checks("strict", [Check("right", ok)], category), category=category)]
    return RunRecord(nodeid=f"cases/{case}.yaml::{case}[m-r{rep:02d}]", case=case, stage="DP", model_id="m",
                     model="x/m", params={}, repetition=rep, status=status, strict_success=ok, legacy_success=ok,
                     attempts=attempts, error=error)


def cassette_miss(case: str, rep: int) -> RunRecord:
    return run(case, rep, False, RunStatus.ERROR, "cassette_miss: prompt changed since recording (code); re-record")


def write(tmp_path, name: str, records: list[RunRecord], complete: bool = True):
    report.write_report(tmp_path / name, records, {"run_id": name}, complete=complete)
    return str(tmp_path / name)


def test_the_issues_scenario_3_of_3_then_cassette_misses_is_not_comparable(tmp_path, capsys):
    """Before: 3/3. After a prompt edit the replay stopped with cassette_miss 3 times: today compare
    printed '3/3 -> 0/3, no significant difference' and exited 0."""
    before = write(tmp_path, "before", [run("wine", r, True) for r in (1, 2, 3)])
    after = write(tmp_path, "after-edit", [cassette_miss("wine", r) for r in (1, 2, 3)])
    assert cli.main(["compare", before, after, "--fail-on-regression"]) == EXIT_SETUP
    out, err = capsys.readouterr()
    assert "NOT COMPARABLE: B has 3 cassette_miss run(s)" in out
    assert "3/3" in out and "0/0" in out and "0/3" not in out  # the misses are no finished failures
    assert "gate: not comparable (exit 6): B has 3 cassette_miss run(s)" in err
    # --max-drop is a gate too; without any gate compare only informs
    assert cli.main(["compare", before, after, "--max-drop", "0.1"]) == EXIT_SETUP
    assert cli.main(["compare", before, after]) == 0


def test_an_incomplete_report_is_not_comparable(tmp_path, capsys):
    a = write(tmp_path, "a", [run("wine", r, True) for r in (1, 2, 3)])
    b = write(tmp_path, "b", [run("wine", r, True) for r in (1, 2, 3)], complete=False)
    assert cli.main(["compare", a, b, "--fail-on-regression", "--json"]) == EXIT_SETUP
    assert json.loads(capsys.readouterr().out)["not_comparable"] == ["B's report is incomplete (complete: false)"]


def test_the_pooled_paired_test_sees_a_regression_no_case_can_show(tmp_path, capsys):
    """10 cases x 3 repetitions; in 7 cases one repetition flips from success to failure. No case
    (1 discordant pair of 3) is significant; pooled, 7:0 discordant pairs are (p = 2/128)."""
    cases = [f"c{i}" for i in range(10)]
    a = [run(c, r, True) for c in cases for r in (1, 2, 3)]
    b = [run(c, r, not (r == 1 and i < 7)) for i, c in enumerate(cases) for r in (1, 2, 3)]
    result = compare(a, b)
    assert not result.regressions and all(g.p_value == 1.0 for g in result.groups)
    pooled = result.pooled
    assert pooled.test == MCNEMAR_POOLED and (pooled.pairs, pooled.a_only, pooled.b_only) == (30, 7, 0)
    assert pooled.p_value == pytest.approx(2 / 2 ** 7) and pooled.regression
    assert cli.main(["compare", write(tmp_path, "a", a), write(tmp_path, "b", b), "--fail-on-regression"]) == 1
    out = capsys.readouterr().out
    assert "pooled over 10 group(s): exact McNemar over all (group, repetition) pairs (two-sided), 7:0 of 30 pairs" in out
    assert "the pooled test finds a significant regression" in out


def test_the_power_line_says_3_pairs_can_never_be_significant():
    assert min_discordant(0.05) == 6  # 2 * 0.5**5 = 0.0625, 2 * 0.5**6 = 0.031
    one_case = compare([run("wine", r, True) for r in (1, 2, 3)], [run("wine", r, False) for r in (1, 2, 3)])
    (g,) = one_case.groups
    assert g.a_only == 3 and g.p_value == 0.25 and not g.regression  # every pair flipped, still not significant
    assert one_case.power == ["WARNING: per group, 3 pairs can never reach p < 0.05 (at least 6 needed): no change "
                              "in 1 of 1 group(s) could be significant on its own"]
    ten_cases = compare([run(f"c{i}", r, True) for i in range(10) for r in (1, 2, 3)],
                        [run(f"c{i}", r, True) for i in range(10) for r in (1, 2, 3)])
    assert ten_cases.power[0] == ("power: with 30 pairs the pooled test needs at least 6 pairs flipping one way "
                                  "(none back) to reach p < 0.05: the smallest detectable change is 0.200 of the "
                                  "pooled rate")
    assert ten_cases.power[1].endswith("no change in 10 of 10 group(s) could be significant on its own; the pooled "
                                       "test can")
    two_pairs = compare([run(c, 1, True) for c in ("x", "y")], [run(c, 1, False) for c in ("x", "y")])
    assert two_pairs.power[0].startswith("WARNING: 2 pairs can never reach p < 0.05 (at least 6 needed)")


def test_unpaired_groups_pool_with_cochran_mantel_haenszel():
    # different repetition counts: unpaired (Fisher per group), pooled with CMH over the groups
    a = [run(c, r, True) for c in ("x", "y", "z") for r in range(1, 9)]
    b = [run(c, r, r > 6) for c in ("x", "y", "z") for r in range(1, 11)]
    result = compare(a, b)
    assert not any(g.paired for g in result.groups)
    # each group: A 8/8, B 4/10; E[A ok] = 8*12/18, Var = 8*10*12*6/(18^2*17); 3 strata: chi2 = (8 - 0.5)^2 / (3 Var)
    variance = 3 * 8 * 10 * 12 * 6 / (18 ** 2 * 17)
    assert result.pooled.test == CMH and result.pooled.regression
    assert result.pooled.p_value == pytest.approx(scipy.stats.chi2.sf(7.5 ** 2 / variance, 1))
    assert any(line.startswith("power: per unpaired group, the smallest drop from a perfect A") for line in result.power)


def test_max_drop_gates_on_the_effect_size(tmp_path, capsys):
    a = write(tmp_path, "a", [run(c, r, True) for c in ("x", "y") for r in range(1, 11)])
    b = write(tmp_path, "b", [run("x", r, r > 1) for r in range(1, 11)] + [run("y", r, r > 2) for r in range(1, 11)])
    assert cli.main(["compare", a, b, "--max-drop", "10%"]) == 1  # y fell by 20 points
    assert "gate: 1 group(s) dropped by more than --max-drop 0.1: y × m 1.000 -> 0.800 (exit 1)" in capsys.readouterr().err
    assert cli.main(["compare", a, b, "--max-drop", "0.2"]) == 0
    with pytest.raises(SystemExit):  # argparse: a usage error (exit 2), one line naming the flag
        cli.main(["compare", a, b, "--max-drop", "ten"])
    assert "argument --max-drop: expected a rate such as 0.8 or 80%, got 'ten'" in capsys.readouterr().err


def test_the_html_shows_set_up_trouble_at_the_top_never_a_0_rate(tmp_path):
    records = [cassette_miss("wine", r) for r in (1, 2, 3)] + [run("fir", r, r != 3) for r in (1, 2, 3)]
    records.append(run("fir", 4, False, RunStatus.CRASHED))
    page = report.write_report(tmp_path / "r", records, {"run_id": "r"}, html=True)["report.html"].read_text()
    trouble = page.index('id="setup-trouble"')
    assert trouble < page.index('id="summary"')  # at the top, before any rate
    top = page[trouble:page.index("</div>", trouble)]
    assert "wine × m × stateless: 3 cassette_miss of 3 run(s): no verdict at all" in top
    assert "fir × m × stateless: 1 crashed of 4 run(s)" in top
    summary = page[page.index('id="table-summary"'):page.index("</table>", page.index('id="table-summary"'))]
    assert "no verdict: 3 cassette_miss" in summary and "+ no verdict: 1 crashed" in summary
    wine = summary.split("wine × m")[1].split("</tr>")[0]
    assert ">0.000 " not in wine and "[0.000" not in wine  # the missed case shows no rate or interval at all
    assert "no verdict: 3 cassette_miss" in page[page.index("<svg"):]  # the rates chart says it too
