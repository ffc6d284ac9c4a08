"""The difficulty tier in every report table and the per-tier roll-up (issue 23): runs.csv,
summary.csv, summary.json, stats.json, tiers.csv, the terminal summary and the HTML page."""

from __future__ import annotations

import json

import pandas as pd

from pytest_autopilot.core.records import Attempt, Category, RunRecord, RunStatus, Verdict
from pytest_autopilot.core.records import Check
from pytest_autopilot.results import report, stats
from pytest_autopilot.results.html import render_html
from pytest_autopilot.results.tiers import TIER_COLUMNS, tier_frame, tier_lines


def _run(case: str, tier: int | None, rep: int, ok: bool, attempts: int = 1, model: str = "m") -> RunRecord:
    tries = [Attempt(step="code", item=None, number=n, prompt_hash="h", prompt="p", response="r", code=f"c{n}",
                     code_lang="python", strict=Verdict.from_checks("o", [Check("x", ok or n < attempts)]),
                     category=None if ok and n == attempts else Category.SEMANTIC_MISMATCH)
             for n in range(1, attempts + 1)]
    return RunRecord(nodeid=f"cases/{case}.yaml::{case}[{model}-r{rep:02d}]", case=case, stage="DP", model_id=model,
                     model=f"local/{model}", params={}, repetition=rep, status=RunStatus.SUCCESS if ok else RunStatus.FAILURE,
                     strict_success=ok, legacy_success=ok, attempts=tries, tier=tier)


RECORDS = [
    _run("easy_a", 1, 1, True), _run("easy_a", 1, 2, False, 3), _run("easy_b", 1, 1, True, 2),
    _run("easy_b", 1, 2, False, 2), _run("whole", 2, 1, False, 5), _run("whole", 2, 2, False, 5),
    _run("paper", None, 1, True),  # an imported run: no tier, left out of the roll-up
]


def test_every_table_carries_the_tier(tmp_path):
    report.write_report(tmp_path, RECORDS, {"run_id": "t"}, extended=True, html=True)
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert runs.set_index("case")["tier"].dropna().astype(int).to_dict() == {"easy_a": 1, "easy_b": 1, "whole": 2}
    assert runs.set_index("case")["tier"].isna()["paper"]
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert list(summary.columns) == stats.SUMMARY_COLUMNS and "tier" in stats.SUMMARY_COLUMNS
    assert summary.set_index("case")["tier"].dropna().astype(int).to_dict() == {"easy_a": 1, "easy_b": 1, "whole": 2}
    groups = json.loads((tmp_path / "stats.json").read_text())["groups"]
    assert {g["case"]: g["tier"] for g in groups} == {"easy_a": 1, "easy_b": 1, "whole": 2, "paper": None}
    assert {r["case"]: r["tier"] for r in json.loads((tmp_path / "summary.json").read_text())["summary"]}["whole"] == 2


def test_the_per_tier_roll_up_pools_the_cases_of_a_tier(tmp_path):
    report.write_report(tmp_path, RECORDS, {"run_id": "t"}, extended=True)
    tiers = pd.read_csv(tmp_path / "tiers.csv")
    assert list(tiers.columns) == TIER_COLUMNS
    one, two = tiers.to_dict(orient="records")
    assert (one["tier"], one["cases"], one["runs"], one["strict_successes"], one["strict_rate"]) == (1, 2, 4, 2, 0.5)
    assert one["strict_ci_low"] < 0.5 < one["strict_ci_high"] and one["median_attempts"] == 2.0
    assert (two["tier"], two["cases"], two["runs"], two["strict_successes"]) == (2, 1, 2, 0)
    pooled = json.loads((tmp_path / "stats.json").read_text())["tiers"]
    assert [(g["tier"], g["runs"], g["successes"], g["label"]) for g in pooled] == [(1, 4, 2, "1 × m × stateless"),
                                                                                     (2, 2, 0, "2 × m × stateless")]
    assert json.loads((tmp_path / "summary.json").read_text())["tiers"][0]["strict_rate"] == 0.5


def test_terminal_and_html_show_tiers():
    lines = report.terminal_lines(stats.summarise(RECORDS))
    assert lines[0].split()[:3] == ["case", "T", "model"]
    assert any(line.startswith("whole") and " 2 " in line for line in lines)
    roll_up = tier_lines(tier_frame(RECORDS))
    assert roll_up[0].startswith("per tier")
    assert "tier 1  m  stateless: 2 case(s), 4 run(s), strict 2/4 = 0.50 [" in roll_up[1]
    assert "attempts per step " in roll_up[1] and "repairs per run " in roll_up[1]
    page = render_html(RECORDS, {"run_id": "t"})
    assert 'id="table-tiers"' in page and "tier 1 × m × stateless" in page and "<th>tier</th>" in page
