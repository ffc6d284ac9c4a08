"""Tests for pytest_autopilot.results.stats and pytest_autopilot.results.report (hand-built RunRecords)."""

from __future__ import annotations

import json
import math
import os

import pandas as pd
import pytest

from pytest_autopilot.core.records import (
    Attempt,
    Category,
    Check,
    ExecResult,
    RunRecord,
    RunStatus,
    Verdict,
)
from pytest_autopilot.results import report, stats

# --------------------------------------------------------------------------------------------
# fixtures


def _attempt(
    number: int,
    *,
    category: str | None,
    strict_ok: bool,
    legacy_ok: bool,
    failed: tuple[str, ...] = ("no_nan:Red",),
    cost: float | None = 0.01,
    tokens: int | None = 100,
    latency: float | None = 1.0,
    truncated: bool | None = False,
    retries: int = 0,
    returncode: int | None = 0,
    step: str = "pipeline",
) -> Attempt:
    return Attempt(
        step=step,
        item=None,
        number=number,
        prompt_hash=f"hash{number}",
        prompt=f"prompt {number}",
        response="```python\nprint(1)\n```",
        code="print(1)",
        code_lang="python",
        execution=ExecResult(returncode=returncode, stdout="out", stderr="", duration_s=0.5,
                             isolation={"cpu_s": 10}),
        strict=Verdict.from_checks("strict", [Check("output_exists", True)] + (
            [] if strict_ok else [Check(n, False, "bad") for n in failed]), Category.SEMANTIC_MISMATCH),
        legacy=Verdict.from_checks("legacy", [Check("output_exists", legacy_ok, "")]),
        category=category,
        prompt_tokens=None if tokens is None else tokens // 2,
        completion_tokens=None if tokens is None else tokens - tokens // 2,
        total_tokens=tokens,
        cost_usd=cost,
        latency_s=latency,
        transient_retries=retries,
        truncated=truncated,
    )


def _run(nodeid: str, case: str, model_id: str, rep: int, status: str, strict: bool, legacy: bool,
         attempts: list[Attempt], *, scripted: bool = False, error: str | None = None) -> RunRecord:
    return RunRecord(
        nodeid=nodeid, case=case, stage="preprocessing", model_id=model_id, model=f"provider/{model_id}",
        params={"temperature": 0.0, "max_tokens": 2048}, repetition=rep, status=status,
        strict_success=strict, legacy_success=legacy, attempts=attempts, scripted=scripted, error=error,
        started_at="2025-01-01T00:00:00+00:00", finished_at="2025-01-01T00:00:10+00:00", duration_s=10.0,
        worker="gw0", cassette=None,
    )


SEM = Category.SEMANTIC_MISMATCH


@pytest.fixture
def records() -> list[RunRecord]:
    return [
        # fir / gpt-x: success at attempt 2 (costs known)
        _run("t::fir[gpt-x-0]", "fir", "gpt-x", 0, RunStatus.SUCCESS, True, True, [
            _attempt(1, category=Category.RUNTIME_ERROR, strict_ok=False, legacy_ok=False, returncode=1,
                     cost=0.01, tokens=100, latency=1.0),
            _attempt(2, category=None, strict_ok=True, legacy_ok=True, cost=0.02, tokens=200, latency=2.0),
        ]),
        # fir / gpt-x: failure after 5 attempts, one truncated answer, one transient retry
        _run("t::fir[gpt-x-1]", "fir", "gpt-x", 1, RunStatus.FAILURE, False, False, [
            _attempt(n, category=SEM, strict_ok=False, legacy_ok=False, failed=("no_nan:Red", "range:Blue"),
                     cost=0.01, tokens=50, latency=1.0, truncated=(n == 3), retries=(1 if n == 4 else 0))
            for n in range(1, 6)
        ]),
        # fir / gpt-x: silent failure (legacy accepts, strict rejects), 3 attempts
        _run("t::fir[gpt-x-2]", "fir", "gpt-x", 2, RunStatus.FAILURE, False, True, [
            _attempt(n, category=SEM, strict_ok=False, legacy_ok=(n == 3), cost=0.01, tokens=10, latency=0.5)
            for n in range(1, 4)
        ]),
        # fir / local: success at attempt 2, second attempt's cost unknown, tokens partly unknown
        _run("t::fir[local-0]", "fir", "local", 0, RunStatus.SUCCESS, True, True, [
            _attempt(1, category=SEM, strict_ok=False, legacy_ok=False, cost=0.01, tokens=100, latency=3.0,
                     truncated=None),
            _attempt(2, category=None, strict_ok=True, legacy_ok=True, cost=None, tokens=None, latency=5.0),
        ]),
        # fir / local: the worker crashed, no attempts recorded
        _run("t::fir[local-1]", "fir", "local", 1, RunStatus.CRASHED, False, False, [],
             error="worker gw1 crashed"),
        # dp / scripted stand-in: success at attempt 1 (tokens unknown), and an API error run
        _run("t::dp[scripted-0]", "dp", "scripted-standin", 0, RunStatus.SUCCESS, True, True, [
            _attempt(1, category=None, strict_ok=True, legacy_ok=True, cost=0.0, tokens=None, latency=0.0),
        ], scripted=True),
        _run("t::dp[scripted-1]", "dp", "scripted-standin", 1, RunStatus.ERROR, False, False, [
            _attempt(1, category=Category.LLM_API_ERROR, strict_ok=False, legacy_ok=False, cost=0.0,
                     tokens=None, latency=0.25),
        ], scripted=True, error="provider said 500"),
    ]


# --------------------------------------------------------------------------------------------
# wilson_interval


def test_wilson_interval_known_value_and_matches_scipy():
    from scipy.stats import binomtest

    low, high = stats.wilson_interval(7, 10)
    assert low == pytest.approx(0.3968, abs=1e-3)
    assert high == pytest.approx(0.8922, abs=1e-3)
    for k, n, conf in [(7, 10, 0.95), (0, 4, 0.95), (4, 4, 0.95), (3, 9, 0.9)]:
        ci = binomtest(k, n).proportion_ci(confidence_level=conf, method="wilson")
        assert stats.wilson_interval(k, n, conf) == pytest.approx((ci.low, ci.high), abs=1e-12)
    # a lower confidence gives a narrower interval (the argument is actually used)
    lo90, hi90 = stats.wilson_interval(7, 10, confidence=0.90)
    assert low < lo90 and hi90 < high
    assert all(isinstance(x, float) for x in stats.wilson_interval(7, 10))


def test_wilson_interval_no_trials_is_nan():
    low, high = stats.wilson_interval(0, 0)
    assert math.isnan(low) and math.isnan(high)


# --------------------------------------------------------------------------------------------
# runs_frame / attempts_frame


def test_runs_frame_per_run_values(records):
    runs = stats.runs_frame(records).set_index("nodeid")
    assert list(stats.runs_frame(records).columns) == stats.RUN_COLUMNS
    assert len(runs) == len(records)

    ok = runs.loc["t::fir[gpt-x-0]"]
    assert ok.attempts == 2 and ok.tokens == 300 and ok.cost_usd == pytest.approx(0.03)
    assert ok.latency_s == pytest.approx(3.0) and pd.isna(ok.final_category) and not ok.silent_failure

    fail = runs.loc["t::fir[gpt-x-1]"]
    assert fail.attempts == 5 and fail.truncated_attempts == 1 and fail.transient_retries == 1
    assert fail.cost_usd == pytest.approx(0.05) and fail.final_category == SEM

    silent = runs.loc["t::fir[gpt-x-2]"]
    assert bool(silent.silent_failure) and not silent.strict_success and silent.legacy_success

    # one unknown cost makes the run's cost unknown (never 0, never the partial sum)
    local = runs.loc["t::fir[local-0]"]
    assert math.isnan(local.cost_usd)
    assert local.tokens == 100  # partially known tokens are summed
    assert local.truncated_attempts == 0  # truncated=None is "undetermined", not truncated

    crashed = runs.loc["t::fir[local-1]"]
    assert crashed.attempts == 0 and crashed.status == RunStatus.CRASHED
    assert math.isnan(crashed.cost_usd) and math.isnan(crashed.tokens)  # calls may be lost

    scripted_ok = runs.loc["t::dp[scripted-0]"]
    assert math.isnan(scripted_ok.tokens)  # all attempts' tokens unknown
    assert scripted_ok.cost_usd == 0.0 and bool(scripted_ok.scripted)
    assert runs.loc["t::dp[scripted-1]"].final_category == Category.LLM_API_ERROR
    assert runs.loc["t::dp[scripted-1]"].error == "provider said 500"


def test_attempts_frame_rows(records):
    att = stats.attempts_frame(records)
    assert list(att.columns) == stats.ATTEMPT_COLUMNS
    assert len(att) == sum(len(r.attempts) for r in records) == 14
    first = att.iloc[0]
    assert (first.nodeid, first.number, first.returncode, first.category) == (
        "t::fir[gpt-x-0]", 1, 1, Category.RUNTIME_ERROR)
    assert not first.strict_passed and first.duration_s == 0.5
    fails = att[att.nodeid == "t::fir[gpt-x-1]"]
    assert list(fails.number) == [1, 2, 3, 4, 5]
    assert set(fails.failed_checks) == {"no_nan:Red;range:Blue"}
    assert att.iloc[1].failed_checks == "" and bool(att.iloc[1].strict_passed)
    silent = att[att.nodeid == "t::fir[gpt-x-2]"]
    assert list(silent.legacy_passed) == [False, False, True]
    assert math.isnan(att[att.nodeid == "t::fir[local-0]"].iloc[1].cost_usd)


def test_frames_of_no_records_have_columns():
    assert list(stats.runs_frame([]).columns) == stats.RUN_COLUMNS
    assert list(stats.attempts_frame([]).columns) == stats.ATTEMPT_COLUMNS
    assert stats.summarise([]).empty


# --------------------------------------------------------------------------------------------
# summarise


def test_summarise_numbers(records):
    summary = stats.summarise(records)
    assert list(summary.columns) == stats.SUMMARY_COLUMNS
    assert list(zip(summary.case, summary.model_id)) == [
        ("dp", "scripted-standin"), ("fir", "gpt-x"), ("fir", "local")]
    s = summary.set_index("model_id")

    gpt = s.loc["gpt-x"]
    assert (gpt.runs, gpt.strict_successes, gpt.legacy_successes, gpt.silent_failures) == (3, 1, 2, 1)
    assert gpt.strict_rate == pytest.approx(1 / 3) and gpt.legacy_rate == pytest.approx(2 / 3)
    assert gpt.silent_failure_rate == pytest.approx(1 / 3)
    assert (gpt.strict_ci_low, gpt.strict_ci_high) == pytest.approx(stats.wilson_interval(1, 3))
    assert (gpt.legacy_ci_low, gpt.legacy_ci_high) == pytest.approx(stats.wilson_interval(2, 3))
    assert gpt.mean_attempts == pytest.approx(10 / 3) and gpt.median_attempts == 3
    assert gpt.mean_latency_s == pytest.approx((3.0 + 5.0 + 1.5) / 3)
    assert gpt.total_tokens == 300 + 250 + 30 and gpt.mean_tokens == pytest.approx(580 / 3)
    assert gpt.total_cost_usd == pytest.approx(0.11) and gpt.mean_cost_usd == pytest.approx(0.11 / 3)
    assert (gpt.crashed, gpt.errors) == (0, 0) and not gpt.scripted

    local = s.loc["local"]
    assert (local.runs, local.strict_successes, local.crashed, local.errors) == (2, 1, 1, 0)
    assert local.mean_attempts == 1.0  # (2 + 0) / 2
    assert math.isnan(local.total_cost_usd) and math.isnan(local.mean_cost_usd)  # unknown stays unknown
    assert local.total_tokens == 100

    scripted = s.loc["scripted-standin"]
    assert bool(scripted.scripted) and (scripted.errors, scripted.strict_successes) == (1, 1)
    assert scripted.total_cost_usd == 0.0
    assert math.isnan(scripted.total_tokens) and math.isnan(scripted.mean_tokens)


def test_summarise_order_is_deterministic(records):
    a = stats.summarise(records)
    b = stats.summarise(list(reversed(records)))
    pd.testing.assert_frame_equal(a, b)


# --------------------------------------------------------------------------------------------
# write_report / load_results


def _reject_constant(name):
    raise ValueError(f"non-standard JSON constant {name}")


PROVENANCE = {"git": "abc123", "python": "3.11", "models": {"gpt-x": {"temperature": 0.0}}}


def test_write_report_files(tmp_path, records):
    paths = report.write_report(tmp_path / "out", records, PROVENANCE)
    assert set(paths) == {"results.json", "runs.csv", "attempts.csv", "summary.csv", "tiers.csv", "summary.json",
                          "check_failures.csv"}
    for name, path in paths.items():
        assert path == tmp_path / "out" / name and path.is_file()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(paths)  # no temp files left

    for name in ("results.json", "summary.json"):
        text = paths[name].read_text()
        assert "NaN" not in text and "Infinity" not in text
        data = json.loads(text, parse_constant=_reject_constant)
        assert data["complete"] is True and data["provenance"] == PROVENANCE

    summary = json.loads(paths["summary.json"].read_text())["summary"]
    assert len(summary) == 3
    local = next(r for r in summary if r["model_id"] == "local")
    assert local["total_cost_usd"] is None and local["mean_cost_usd"] is None
    assert local["runs"] == 2 and local["scripted"] is False
    gpt = next(r for r in summary if r["model_id"] == "gpt-x")
    assert gpt["total_cost_usd"] == pytest.approx(0.11) and gpt["silent_failures"] == 1

    results = json.loads(paths["results.json"].read_text())
    assert results["runs"] == [r.to_dict() for r in records]

    assert len(pd.read_csv(paths["runs.csv"])) == 7
    assert len(pd.read_csv(paths["attempts.csv"])) == 14
    summary_csv = pd.read_csv(paths["summary.csv"])
    assert len(summary_csv) == 3 and list(summary_csv.columns) == stats.SUMMARY_COLUMNS


def test_write_report_incomplete(tmp_path, records):
    paths = report.write_report(tmp_path, records[:2], PROVENANCE, complete=False)
    for name in ("results.json", "summary.json"):
        assert json.loads(paths[name].read_text())["complete"] is False
    summary = json.loads(paths["summary.json"].read_text())["summary"]
    assert [(r["model_id"], r["runs"]) for r in summary] == [("gpt-x", 2)]
    assert report.load_results(paths["results.json"])[2] is False


def test_write_is_atomic(tmp_path, records, monkeypatch):
    paths = report.write_report(tmp_path, records, PROVENANCE)
    before = paths["results.json"].read_text()

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        report.write_report(tmp_path, records[:1], {"other": True})
    assert paths["results.json"].read_text() == before  # old file untouched
    assert sorted(os.listdir(tmp_path)) == sorted(paths)  # temp file cleaned up


def test_load_results_round_trip(tmp_path, records):
    paths = report.write_report(tmp_path, records, PROVENANCE)
    loaded, provenance, complete = report.load_results(paths["results.json"])
    assert loaded == records
    assert all(isinstance(a.strict, Verdict) and isinstance(a.execution, ExecResult)
               for r in loaded for a in r.attempts)
    assert provenance == PROVENANCE and complete is True


# --------------------------------------------------------------------------------------------
# terminal_lines


def _ci_text(k: int, n: int) -> str:
    low, high = stats.wilson_interval(k, n)
    return f"{k / n:.2f} [{low:.2f}-{high:.2f}]"


def test_terminal_lines(records):
    lines = report.terminal_lines(stats.summarise(records))
    text = "\n".join(lines)
    assert all(len(line) <= report.MAX_LINE for line in lines)
    gpt_line = next(line for line in lines if "gpt-x" in line)
    assert "0.33 [0.06-0.79]" in gpt_line and _ci_text(1, 3) == "0.33 [0.06-0.79]"
    assert _ci_text(2, 3) in gpt_line  # legacy
    assert "$0.1100" in gpt_line and " 3.3 (2.3) " in gpt_line  # attempts per step (repairs per run)
    local_line = next(line for line in lines if "local" in line)
    assert "unknown" in local_line and "$" not in local_line
    assert "scripted stand-in" in text and "not a real LLM" in text
    # the table is aligned: numeric columns are right-aligned under their headers
    header = lines[0]
    strict_end = header.index("strict (95% CI)") + len("strict (95% CI)")
    assert all(line[strict_end - 1] == "]" for line in lines[2:5])
    assert len({len(line) for line in lines[:5]}) == 1  # header, rule and rows end in the same column


def test_terminal_lines_without_scripted_rows_and_long_names(records):
    real = [r for r in records if not r.scripted]
    for r in real:
        r.case = "a_really_long_case_name_" * 6
        r.model_id = r.model_id + "-with-a-very-long-suffix" * 4
    lines = report.terminal_lines(stats.summarise(real))
    assert not any("scripted" in line for line in lines)
    assert all(len(line) <= report.MAX_LINE for line in lines)
    assert sum("unknown" in line for line in lines) >= 1  # cost column survived the clipping


def test_terminal_lines_empty():
    assert report.terminal_lines(stats.summarise([])) == ["autopilot: no runs recorded"]


def test_attempt_without_code_or_execution():
    bare = Attempt(step="pipeline", item="op1", number=1, prompt_hash="h", prompt="p", response="no code",
                   category=Category.NO_CODE)
    rec = _run("t::x[m-0]", "x", "m", 0, RunStatus.FAILURE, False, False, [bare])
    att = stats.attempts_frame([rec])
    row = att.iloc[0]
    assert pd.isna(row.returncode) and math.isnan(row.duration_s) and pd.isna(row.truncated)
    assert row["item"] == "op1" and row.failed_checks == "" and not row.strict_passed
    run = stats.runs_frame([rec]).iloc[0]
    assert run.final_category == Category.NO_CODE and run.truncated_attempts == 0
    assert math.isnan(run.cost_usd) and math.isnan(run.tokens) and math.isnan(run.latency_s)
