"""Research statistics (stats.group_stats & co.) and comparisons (compare.py) on hand-made RunRecords."""

from __future__ import annotations

import itertools
import json
import math

import pandas as pd
import pytest

from pytest_autopilot.core.records import Attempt, Category, Check, ExecResult, RunRecord, RunStatus, Verdict
from pytest_autopilot.results import compare as cmp
from pytest_autopilot.results import report, stats


def att(number: int, category: str | None, *, tokens: int | None = 100, cost: float | None = 0.01,
        latency: float | None = 1.0, legacy_ok: bool | None = None, step: str = "code") -> Attempt:
    ok = category is None
    return Attempt(
        step=step, item=None, number=number, prompt_hash=f"h{number}", prompt="p",
        code="print(1)", code_lang="python",
        execution=ExecResult(returncode=0 if ok else 1, stdout="", stderr="", duration_s=0.1),
        strict=Verdict.from_checks("strict", [Check("right", ok, "" if ok else "wrong")], category),
        legacy=Verdict.from_checks("legacy", [Check("exit0", ok if legacy_ok is None else legacy_ok)]),
        category=category, total_tokens=tokens, cost_usd=cost, latency_s=latency,
    )


def run(case: str, model: str, rep: int, attempts: list[Attempt], *, strict: bool, legacy: bool | None = None,
        status: str | None = None, stage: str = "DP", scripted: bool = False) -> RunRecord:
    return RunRecord(
        nodeid=f"cases/{case}.yaml::{case}[{model}-r{rep:02d}]", case=case, stage=stage, model_id=model,
        model=f"x/{model}", params={}, repetition=rep,
        status=status or (RunStatus.SUCCESS if strict else RunStatus.FAILURE),
        strict_success=strict, legacy_success=strict if legacy is None else legacy, attempts=attempts,
        scripted=scripted,
    )


RT, SEM = Category.RUNTIME_ERROR, Category.SEMANTIC_MISMATCH


@pytest.fixture
def five() -> list[RunRecord]:
    """One (case, model, strategy): 5 runs, 4 finished, 2 strict successes (after 1 and 3 attempts),
    1 silent failure, 1 crashed run."""
    return [
        run("fir", "m", 1, [att(1, None, tokens=100, cost=0.01, latency=1.0)], strict=True),
        run("fir", "m", 2, [att(1, Category.NO_CODE), att(2, Category.SYNTAX_ERROR), att(3, None)], strict=True),
        run("fir", "m", 3, [att(n, RT) for n in range(1, 6)], strict=False),
        run("fir", "m", 4, [att(1, SEM), att(2, SEM, legacy_ok=True)], strict=False, legacy=True),
        run("fir", "m", 5, [], strict=False, status=RunStatus.CRASHED),
    ]


# --------------------------------------------------------------------------------------------
# pass@k, pass^k


def test_pass_at_k_and_pass_hat_k_known_values():
    assert stats.pass_at_k(5, 2, 2) == pytest.approx(0.7, abs=1e-15)
    assert stats.pass_hat_k(5, 2, 2) == pytest.approx(0.1, abs=1e-15)
    assert stats.pass_at_k(5, 2, 1) == pytest.approx(0.4) and stats.pass_hat_k(5, 2, 1) == pytest.approx(0.4)
    assert stats.pass_at_k(5, 2, 4) == 1.0  # n - c < k: some success is certain
    assert stats.pass_hat_k(5, 2, 3) == 0.0  # more than c runs cannot all succeed
    assert stats.pass_at_k(4, 0, 2) == 0.0 and stats.pass_hat_k(4, 4, 4) == 1.0
    for bad in [(5, 6, 1), (5, 2, 0), (5, 2, 6), (0, 0, 1)]:
        with pytest.raises(ValueError):
            stats.pass_at_k(*bad)


@pytest.mark.parametrize("n,c", [(5, 2), (6, 3), (4, 1), (7, 7), (6, 0)])
def test_pass_k_match_enumeration_of_k_subsets(n, c):
    outcomes = [True] * c + [False] * (n - c)
    for k in range(1, n + 1):
        subsets = list(itertools.combinations(outcomes, k))
        assert stats.pass_at_k(n, c, k) == pytest.approx(sum(any(s) for s in subsets) / len(subsets))
        assert stats.pass_hat_k(n, c, k) == pytest.approx(sum(all(s) for s in subsets) / len(subsets))


# --------------------------------------------------------------------------------------------
# group_stats


def test_group_stats_numbers(five):
    (g,) = stats.group_stats(five)
    assert g.key == {"case": "fir", "model_id": "m", "strategy": "stateless"} and g.label == "fir × m × stateless"
    assert (g.runs, g.finished, g.crashed, g.incomplete) == (5, 4, 1, 0)
    # the crashed run has no verdict: every rate is over the 4 finished runs
    assert (g.successes, g.legacy_successes, g.silent_failures) == (2, 3, 1)
    assert g.rate == 0.5 and (g.ci_low, g.ci_high) == pytest.approx(stats.wilson_interval(2, 4))
    assert g.legacy_rate == 0.75 and g.silent_failure_rate == pytest.approx(0.25)
    assert g.pass_at_k[2] == pytest.approx(5 / 6) and g.pass_hat_k[2] == pytest.approx(1 / 6)  # n=4, c=2
    assert sorted(g.pass_at_k) == [1, 2, 3, 4] and g.pass_at_k[3] == 1.0 and g.pass_hat_k[3] == 0.0
    assert g.statuses == {"crashed": 1, "failure": 2, "success": 2}

    # attempts 1, 3, 5, 2 (and 0, crashed) -> cumulative success after a attempts, over the 4 finished runs
    assert g.mean_attempts == pytest.approx(2.2) and g.median_attempts == 2 and g.attempts_known == 5
    assert g.success_by_attempt == pytest.approx([0.25, 0.25, 0.5, 0.5, 0.5])

    # tokens per run 100, 300, 500, 200, unknown (crashed)
    assert g.tokens["all"] == pytest.approx(
        {"n": 4, "unknown": 1, "mean": 275.0, "median": 250.0, "q25": 175.0, "q75": 350.0, "iqr": 175.0,
         "total": 1100.0})
    assert g.tokens["successful"] == pytest.approx(
        {"n": 2, "unknown": 0, "mean": 200.0, "median": 200.0, "q25": 150.0, "q75": 250.0, "iqr": 100.0,
         "total": 400.0})
    # cost: the crashed run's cost is unknown, so every statistic over all runs is unknown
    assert g.cost_usd["all"]["unknown"] == 1 and math.isnan(g.cost_usd["all"]["mean"])
    assert math.isnan(g.cost_usd["all"]["median"])
    assert g.cost_usd["successful"]["mean"] == pytest.approx(0.02)  # 0.01 and 0.03
    assert g.latency_s["successful"]["median"] == pytest.approx(2.0)

    # taxonomy: final categories of the 2 failed runs (the crashed one did not fail); every failed attempt
    assert {k: v for k, v in g.final_categories.items() if v} == {RT: 1, SEM: 1}
    assert set(g.final_categories) == set(stats.TAXONOMY)
    assert {k: v for k, v in g.attempt_categories.items() if v} == {
        Category.NO_CODE: 1, Category.SYNTAX_ERROR: 1, RT: 5, SEM: 2}
    assert g.failed_attempts == 9 and not g.scripted and not g.baseline
    assert (g.retries, g.repeated_answers, g.repeated_answer_rate) == (7, 0, 0.0)  # 2 + 4 + 1 retries


def test_group_stats_groups_sorted_and_flags(five):
    other = run("dp", "z", 1, [att(1, None)], strict=True, scripted=True)
    groups = stats.group_stats([*five, other])
    assert [g.label for g in groups] == ["dp × z × stateless", "fir × m × stateless"]
    assert groups[0].scripted and groups[0].success_by_attempt == [1.0]
    pooled = stats.group_stats([*five, other], by=("stage",), baseline=True)
    assert len(pooled) == 1 and pooled[0].runs == 6 and pooled[0].baseline
    assert pooled[0].case is None and pooled[0].stage == "DP"
    by_fn = stats.group_stats(five, by=lambda r: {"odd": r.repetition % 2})
    assert [(g.key, g.runs) for g in by_fn] == [({"odd": 0}, 2), ({"odd": 1}, 3)]


def test_silent_failure_not_measurable_without_strict_verdicts():
    weak = Attempt(step="generation", item=None, number=1, prompt_hash="", prompt="",
                   legacy=Verdict("paper", True, [Check("status", True)]))
    (g,) = stats.group_stats([run("s", "p", 1, [weak], strict=True)])
    assert math.isnan(g.silent_failure_rate) and g.silent_failures == 0
    # no legacy success at all: silent failures are measurably 0
    failed = Attempt(step="generation", item=None, number=1, prompt_hash="", prompt="",
                     legacy=Verdict("paper", False, [Check("status", False)]))
    (g,) = stats.group_stats([run("s", "p", 1, [failed], strict=False)])
    assert g.silent_failure_rate == 0.0
    assert g.attempt_categories[stats.UNKNOWN_CATEGORY] == 1 and g.final_categories[stats.UNKNOWN_CATEGORY] == 1


def test_attempt_failed_rules():
    assert stats.attempt_failed(att(1, RT)) and not stats.attempt_failed(att(1, None))
    bare = Attempt(step="s", item=None, number=1, prompt_hash="", prompt="")
    assert not stats.attempt_failed(bare)
    bare.legacy = Verdict("l", False, [Check("c", False)])
    assert stats.attempt_failed(bare)


def test_group_stats_frame_is_flat(five):
    frame = stats.group_stats_frame(stats.group_stats(five))
    row = frame.iloc[0]
    assert row["group"] == "fir × m × stateless"
    assert row["pass@2"] == pytest.approx(5 / 6) and row["pass^2"] == pytest.approx(1 / 6)
    assert row["success_by_attempt_3"] == pytest.approx(0.5) and row["final_runtime_error"] == 1
    assert (row["strategy"], row["finished"], row["crashed"]) == ("stateless", 4, 1)
    assert row["tokens_all_iqr"] == pytest.approx(175.0) and row["attempt_runtime_error"] == 5
    assert stats.group_stats([]) == []


# --------------------------------------------------------------------------------------------
# run-level aggregates (imported runs)


def _total(tokens, cost, latency) -> Attempt:
    return Attempt(step=stats.RUN_TOTAL_STEP, item=None, number=0, prompt_hash="", prompt="",
                   total_tokens=tokens, cost_usd=cost, latency_s=latency)


def _gen(n: int, ok: bool) -> Attempt:
    return Attempt(step="generation", item=None, number=n, prompt_hash="", prompt="",
                   legacy=Verdict("paper", ok, [Check("status", ok)]))


def test_run_total_attempt_gives_run_numbers_and_attempt_count():
    recs = [
        run("MC", "paper", 1, [_total(600, 0.006, 5.0)], strict=True),  # attempt count unknown
        run("MC", "paper", 2, [_total(800, 0.008, 7.0)], strict=False),
        run("Py", "paper", 1, [_total(1000, None, 30.0), _gen(1, False), _gen(2, False), _gen(3, True)], strict=True),
    ]
    runs = stats.runs_frame(recs)
    assert list(runs.columns) == stats.RUN_COLUMNS
    assert pd.isna(runs.attempts[0]) and pd.isna(runs.attempts[1]) and runs.attempts[2] == 3
    assert list(runs.tokens) == [600, 800, 1000] and list(runs.latency_s) == [5.0, 7.0, 30.0]
    assert runs.cost_usd[0] == pytest.approx(0.006) and math.isnan(runs.cost_usd[2])

    summary = stats.summarise(recs).set_index("case")
    assert math.isnan(summary.loc["MC", "mean_attempts"]) and summary.loc["Py", "mean_attempts"] == 3.0
    assert summary.loc["MC", "mean_tokens"] == 700.0 and summary.loc["MC", "total_cost_usd"] == pytest.approx(0.014)

    mc, py = stats.group_stats(recs)
    assert mc.success_by_attempt is None and mc.attempts_known == 0 and math.isnan(mc.mean_attempts)
    assert mc.failed_attempts == 0  # the aggregate is not an LLM call
    assert py.success_by_attempt == [0.0, 0.0, 1.0] and py.failed_attempts == 2
    assert py.attempt_categories[stats.UNKNOWN_CATEGORY] == 2


def test_write_report_extended_json_has_no_nan(tmp_path, five):
    recs = [*five, run("MC", "paper", 1, [_total(600, 0.006, 5.0)], strict=True)]
    paths = report.write_report(tmp_path, recs, {"run_id": "x"}, extended=True)
    assert {"stats.json", "results.json", "summary.csv"} <= set(paths)
    text = paths["stats.json"].read_text()
    data = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    fir = next(g for g in data["groups"] if g["label"] == "fir × m × stateless")
    assert fir["pass_at_k"]["2"] == pytest.approx(5 / 6) and fir["cost_usd"]["all"]["mean"] is None
    assert json.loads(paths["summary.json"].read_text())["summary"][0]["mean_attempts"] is None


# --------------------------------------------------------------------------------------------
# comparisons


def test_mcnemar_exact_values():
    assert cmp.mcnemar_exact(0, 6) == pytest.approx(0.03125, abs=1e-15)
    assert cmp.mcnemar_exact(6, 0) == pytest.approx(0.03125, abs=1e-15)
    assert cmp.mcnemar_exact(0, 0) == 1.0
    assert cmp.mcnemar_exact(1, 5) == pytest.approx(14 / 64)  # 2 * (1 + 6) / 2**6
    assert cmp.mcnemar_exact(3, 3) == 1.0


def _fisher_by_hand(a, na, b, nb) -> float:
    """Two-sided Fisher p from the hypergeometric distribution (tables no more likely than observed)."""
    total, succ = na + nb, a + b
    prob = lambda x: math.comb(na, x) * math.comb(nb, succ - x) / math.comb(total, succ)  # noqa: E731
    observed = prob(a)
    xs = range(max(0, succ - nb), min(na, succ) + 1)
    return sum(prob(x) for x in xs if prob(x) <= observed * (1 + 1e-7))


def _model_runs(model: str, outcomes: list[bool], case: str = "fir", first_rep: int = 1) -> list[RunRecord]:
    return [run(case, model, rep, [att(1, None if ok else RT)], strict=ok)
            for rep, ok in enumerate(outcomes, start=first_rep)]


def test_compare_paired_mcnemar_flags_regression():
    a = _model_runs("m", [True] * 8 + [False] * 2)
    b = _model_runs("m", [False] * 6 + [True] * 2 + [False] * 2)  # the first 6 pairs flip to failure
    result = cmp.compare(a, b, alpha=0.05)
    (g,) = result.groups
    assert g.paired and g.test == cmp.MCNEMAR and (g.pairs, g.a_only, g.b_only) == (10, 6, 0)
    assert g.p_value == pytest.approx(0.03125) and g.regression and not g.improvement
    assert result.regressions == [g] and "REGRESSION" in result.text() and "McNemar 6:0 of 10 pairs" in result.text()
    # the other way round it is an improvement, not a regression
    rev = cmp.compare(b, a)
    assert rev.groups[0].improvement and not rev.regressions
    # a stricter alpha: not significant
    assert not cmp.compare(a, b, alpha=0.01).regressions
    data = result.to_dict()
    assert data["regressions"] == ["fir × m"] and data["groups"][0]["rate_b"] == pytest.approx(0.2)


def test_compare_paired_counts_only_discordant_pairs():
    a = _model_runs("m", [True, True, False, False, True])
    b = _model_runs("m", [True, False, True, False, False])
    (g,) = cmp.compare(a, b).groups
    assert (g.a_only, g.b_only) == (2, 1) and g.p_value == pytest.approx(1.0)
    assert not g.significant


def test_compare_unpaired_uses_fisher_and_says_so():
    a = _model_runs("m", [True] * 10)
    b = _model_runs("m", [True] * 4 + [False] * 8)  # 12 repetitions vs 10
    result = cmp.compare(a, b)
    (g,) = result.groups
    assert not g.paired and g.test == cmp.FISHER and "different repetition counts (10 vs 12)" == g.why_unpaired
    assert g.p_value == pytest.approx(_fisher_by_hand(10, 10, 4, 12))
    assert g.regression and "Fisher" in result.text() and "why unpaired" in result.text()


def test_compare_baseline_is_unpaired_and_grouped_by_stage():
    base = [run("PyCPU-SG", "paper-x-p", r, [att(1, None)], strict=True, stage="PyCPU-SG") for r in range(1, 11)]
    ours = [run("detect", "ours", r, [att(1, None if r <= 2 else RT)], strict=r <= 2, legacy=True,
                stage="PyCPU-SG") for r in range(1, 11)]
    strict = cmp.compare(base, ours, a_baseline=True)
    assert strict.by == ("stage",) and strict.groups[0].test == cmp.FISHER
    assert strict.groups[0].why_unpaired == "baseline" and strict.groups[0].regression
    assert any("--metric legacy" in n for n in strict.notes)
    legacy = cmp.compare(base, ours, a_baseline=True, metric="legacy")
    assert legacy.groups[0].successes_b == 10 and not legacy.groups[0].significant


def test_compare_two_models_of_one_run_and_unmatched_groups():
    recs = _model_runs("gpt", [True] * 6) + _model_runs("phi", [False] * 6) + _model_runs("gpt", [True], case="only")
    result = cmp.compare(recs, recs, a_model="gpt", b_model="ph*")
    assert result.by == ("case",)
    (g,) = result.groups
    assert g.paired and (g.a_only, g.b_only) == (6, 0) and g.regression
    assert result.only_in_a == ["only"] and result.only_in_b == []
    # several runs per repetition when models are pooled: unpaired
    pooled = cmp.compare(recs, recs, by=("case",))
    fir = next(g for g in pooled.groups if g.label == "fir")
    assert not fir.paired and fir.why_unpaired == "several runs per repetition" and fir.n_a == 12
    with pytest.raises(ValueError):
        cmp.compare(recs, recs, metric="loose")
