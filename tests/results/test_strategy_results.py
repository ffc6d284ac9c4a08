"""The repair strategy as a dimension of the results: frames, groups, summary, stats.json, terminal,
HTML, the repeated-answer rate, and ``compare`` across strategies (hand-built RunRecords)."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from pytest_autopilot import cli
from pytest_autopilot.core.records import Attempt, Category, Check, RunRecord, RunStatus, Verdict
from pytest_autopilot.results import html as html_report
from pytest_autopilot.results import report, stats

RT = Category.RUNTIME_ERROR


def att(number: int, ok: bool, *, code: str | None = "print(1)", repeated: bool = False, step: str = "code",
        item: str | None = None, prompt_chars: int | None = 120) -> Attempt:
    category = None if ok else RT
    return Attempt(step=step, item=item, number=number, prompt_hash=f"h{number}", prompt="p",
                   prompt_chars=prompt_chars, code=code, code_lang="python",
                   strict=Verdict.from_checks("strict", [Check("right", ok)], category),
                   legacy=Verdict.from_checks("legacy", [Check("exit0", ok)]),
                   category=category, total_tokens=10, cost_usd=0.0, latency_s=1.0, repeated=repeated)


def run(rep: int, ok: bool, *, strategy: str = "stateless", model: str = "m", case: str = "fir",
        attempts: list[Attempt] | None = None, status: str | None = None) -> RunRecord:
    suffix = "" if strategy == "stateless" else f"-{strategy}"
    return RunRecord(
        nodeid=f"cases/{case}.yaml::{case}[{model}{suffix}-r{rep:02d}]", case=case, stage="DP", model_id=model,
        model=f"x/{model}", params={}, repetition=rep,
        status=status or (RunStatus.SUCCESS if ok else RunStatus.FAILURE), strict_success=ok, legacy_success=ok,
        attempts=[att(1, ok)] if attempts is None else attempts, strategy=strategy,
    )


def sweep(outcomes: dict[str, list[bool]], **kw) -> list[RunRecord]:
    return [run(rep, ok, strategy=strategy, **kw)
            for strategy, oks in outcomes.items() for rep, ok in enumerate(oks, start=1)]


# --------------------------------------------------------------------------------------------
# frames


def test_frames_carry_strategy_repeated_and_prompt_chars():
    recs = [run(1, True, strategy="conversation", attempts=[
        att(1, False, code="a", prompt_chars=100), att(2, False, code="a", repeated=True, prompt_chars=260),
        att(3, True, code="b", prompt_chars=None)])]
    runs = stats.runs_frame(recs)
    assert runs.loc[0, "strategy"] == "conversation" and runs.loc[0, "repeated_attempts"] == 1
    assert stats.RUN_COLUMNS.index("strategy") == stats.RUN_COLUMNS.index("model") + 1
    attempts = stats.attempts_frame(recs)
    assert list(attempts.strategy) == ["conversation"] * 3
    assert list(attempts.repeated) == [False, True, False] and attempts.repeated.dtype == bool
    assert attempts.prompt_chars.tolist()[:2] == [100, 260] and pd.isna(attempts.prompt_chars[2])
    assert {"strategy", "repeated", "prompt_chars"} <= set(stats.ATTEMPT_COLUMNS)


# --------------------------------------------------------------------------------------------
# groups and summary


def test_groups_and_summary_rows_are_per_strategy():
    recs = sweep({"stateless": [True, False, False, False], "conversation": [True, True, True, False]})
    groups = stats.group_stats(recs)
    assert [g.key for g in groups] == [{"case": "fir", "model_id": "m", "strategy": "conversation"},
                                       {"case": "fir", "model_id": "m", "strategy": "stateless"}]
    assert [(g.strategy, g.successes, g.rate) for g in groups] == [("conversation", 3, 0.75), ("stateless", 1, 0.25)]
    assert groups[0].label == "fir × m × conversation"

    summary = stats.summarise(recs)
    assert stats.SUMMARY_COLUMNS[:3] == ["case", "model_id", "strategy"]
    assert list(summary.columns) == stats.SUMMARY_COLUMNS
    assert list(zip(summary.strategy, summary.runs, summary.strict_successes)) == [
        ("conversation", 4, 3), ("stateless", 4, 1)]
    lines = report.terminal_lines(summary)
    assert "strategy" in lines[0] and all(len(line) <= report.MAX_LINE for line in lines)
    assert "conversation" in lines[2] and "0.75 [" in lines[2] and "stateless" in lines[3] and "0.25 [" in lines[3]


def test_records_written_before_strategies_load_as_stateless(tmp_path):
    old = run(1, True).to_dict()
    for key in ("strategy",):
        del old[key]
    for a in old["attempts"]:
        for key in ("prompt_chars", "repeated", "stopped"):
            del a[key]
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps({"complete": True, "provenance": {}, "runs": [old]}))
    records, _, _ = report.load_results(folder / "results.json")
    assert records[0].strategy == "stateless" and records[0].attempts[0].prompt_chars is None
    written = report.regenerate(folder, html=True)
    summary = pd.read_csv(written["summary.csv"])
    assert summary.loc[0, "strategy"] == "stateless" and summary.loc[0, "strict_rate"] == 1.0
    assert pd.isna(pd.read_csv(written["attempts.csv"]).loc[0, "prompt_chars"])


# --------------------------------------------------------------------------------------------
# repeated answers


@pytest.fixture
def repeating() -> list[RunRecord]:
    return [
        # code step: attempt 2 repeats attempt 1 -> 2 retries, 1 repeated
        run(1, True, attempts=[att(1, False, code="a"), att(2, False, code="a", repeated=True), att(3, True, code="b")]),
        # plan step: 1 retry, repeated; the item's first attempt is no retry -> 1 retry, 1 repeated
        run(2, False, attempts=[att(1, False, step="plan", code="p"), att(2, False, step="plan", code="p", repeated=True),
                                att(1, False, step="ops", item="split", code="s")]),
        # one attempt: nothing could repeat
        run(3, True),
    ]


def test_repeated_answer_rate_by_hand(repeating):
    (g,) = stats.group_stats(repeating)
    assert (g.retries, g.repeated_answers) == (3, 2)
    assert g.repeated_answer_rate == pytest.approx(2 / 3)  # repeated attempts / retries
    assert list(stats.runs_frame(repeating).repeated_attempts) == [1, 1, 0]
    row = stats.summarise(repeating).iloc[0]
    assert row.repeated_answers == 2 and row.repeated_answer_rate == pytest.approx(2 / 3)
    assert "2 (0.67)" in report.terminal_lines(stats.summarise(repeating))[2]


def test_repeated_answer_rate_without_retries_or_code_is_nan():
    (g,) = stats.group_stats([run(1, True), run(2, False)])
    assert (g.retries, g.repeated_answers) == (0, 0) and math.isnan(g.repeated_answer_rate)
    (g,) = stats.group_stats([run(1, True, attempts=[att(1, False, code=None), att(2, True, code=None)])])
    assert g.retries == 1 and math.isnan(g.repeated_answer_rate)  # no code recorded (imports): not measurable


def test_repeats_reach_stats_json_summary_csv_and_html(tmp_path, repeating):
    paths = report.write_report(tmp_path, repeating, {"run_id": "r"}, extended=True, html=True)
    (group,) = json.loads(paths["stats.json"].read_text())["groups"]
    assert group["strategy"] == "stateless" and group["key"]["strategy"] == "stateless"
    assert (group["retries"], group["repeated_answers"]) == (3, 2)
    assert group["repeated_answer_rate"] == pytest.approx(2 / 3)
    summary = pd.read_csv(paths["summary.csv"])
    assert summary.loc[0, "repeated_answer_rate"] == pytest.approx(2 / 3)
    assert list(pd.read_csv(paths["runs.csv"]).repeated_attempts) == [1, 1, 0]
    table = paths["report.html"].read_text().split('id="table-summary"')[1].split("</table>")[0]
    assert "0.667 (2/3)" in table


# --------------------------------------------------------------------------------------------
# HTML


def test_html_rows_curves_and_drill_down_per_model_and_strategy():
    recs = [*sweep({"stateless": [True, False], "conversation": [False, True]}, model="gpt"),
            *sweep({"stateless": [True, True], "conversation": [True, True]}, model="phi")]
    page = html_report.render_html(recs, {"run_id": "s"})
    table = page.split('id="table-summary"')[1].split("</table>")[0]
    labels = [f"fir × {m} × {s}" for m in ("gpt", "phi") for s in ("conversation", "stateless")]
    assert all(label in table for label in labels)
    curves = page.split('id="chart-curves"')[1].split("</ul>")[0]
    assert curves.count("<polyline") == 4  # one curve per (model, strategy)
    assert all(label in curves for label in labels)
    assert 'stroke-dasharray="8 4"' in curves  # conversation is dashed, stateless solid
    # phi's two strategies coincide: the wider (stateless) one is drawn first, under the other
    svg = curves.split("</svg>")[0]
    assert svg.index("fir × phi × stateless") < svg.index("fir × phi × conversation")
    drill = page.split('id="runs"')[1]
    for label in labels:
        group = drill.split(f"<b>{label}</b>")[1].split('<details class="group">')[0]
        assert group.count('class="run"') == 2
        strategy = label.rsplit(" × ", 1)[1]
        assert ("-conversation-r01" in group) == (strategy == "conversation")


# --------------------------------------------------------------------------------------------
# compare across strategies


def _write(tmp_path, name: str, records: list[RunRecord]):
    report.write_report(tmp_path / name, records, {"run_id": name})
    return str(tmp_path / name)


def test_compare_one_report_across_strategies_is_paired_mcnemar(tmp_path, capsys):
    from scipy.stats import binomtest

    stateless = [True, False, False, False, False, False, False, False, True, True]
    conversation = [True, True, True, True, True, True, True, True, True, True]  # pairs 2..8 flip to success
    folder = _write(tmp_path, "R", sweep({"stateless": stateless, "conversation": conversation}))
    argv = ["compare", folder, folder, "--a-strategy", "stateless", "--b-strategy", "conversation", "--json"]
    assert cli.main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    (g,) = data["groups"]
    assert g["label"] == "fir × m" and g["paired"] and (g["pairs"], g["a_only"], g["b_only"]) == (10, 0, 7)
    # exact McNemar: two-sided binomial test of 0 of 7 discordant pairs, by hand 2 * 0.5**7
    assert g["p_value"] == pytest.approx(2 * 0.5 ** 7, abs=1e-15)
    assert g["p_value"] == pytest.approx(binomtest(0, 7, 0.5).pvalue, abs=1e-15)
    assert g["verdict"] == "improvement" and data["regressions"] == []
    # the other way round is a significant regression, and the gate says so
    assert cli.main(["compare", folder, folder, "--a-strategy", "conversation", "--b-strategy", "stateless",
                     "--fail-on-regression"]) == 1
    assert "McNemar 7:0 of 10 pairs" in capsys.readouterr().out


def test_compare_two_reports_pairs_strategy_with_strategy(tmp_path, capsys):
    a = _write(tmp_path, "a", sweep({"stateless": [True] * 6, "conversation": [True] * 6}))
    b = _write(tmp_path, "b", sweep({"stateless": [True] * 6, "conversation": [False] * 6}))
    assert cli.main(["compare", a, b, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["by"] == ["case", "model_id", "strategy"]
    by_label = {g["label"]: g for g in data["groups"]}
    assert set(by_label) == {"fir × m × conversation", "fir × m × stateless"}
    assert all(g["paired"] for g in by_label.values())  # not pooled into "several runs per repetition"
    assert by_label["fir × m × conversation"]["p_value"] == pytest.approx(2 * 0.5 ** 6)
    assert data["regressions"] == ["fir × m × conversation"]
    assert cli.main(["compare", a, b, "--by", "case,strategy", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["by"] == ["case", "strategy"]
