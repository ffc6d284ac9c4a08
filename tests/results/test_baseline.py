"""The paper baseline import (baseline.py): the published figures, and the format on small files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from pytest_autopilot.core.records import RunStatus
from pytest_autopilot.results import baseline, report, stats
from pytest_autopilot.results.provenance import is_baseline

PAPER_DIR = Path(__file__).resolve().parents[3] / "shared" / "paper-records"
needs_paper = pytest.mark.skipif(
    not (PAPER_DIR / "DP_MCU_data_by_run.csv").is_file(),
    reason=f"the paper's published records are not at {PAPER_DIR} (they are never copied into the repo)",
)


def _family(rec) -> dict:
    """Model without its P/NP suffix: the paper's 'phi4 (P+NP)' rows."""
    model = rec.model_id
    for suffix in ("-p", "-np"):
        if model.endswith(suffix):
            model = model[: -len(suffix)]
    return {"stage": rec.stage, "model": model}


# notes/upstream.md, "Figures computed from those files": stage, model, n, success rate (3 dp),
# mean attempts (None: not published), mean latency s (2 dp), mean tokens (1 dp)
UPSTREAM = [
    ("DP", "paper-gpt-4o", 30, 0.900, None, 47.76, 10832.4),
    ("MC", "paper-gpt-4o", 30, 1.000, None, 6.09, 689.0),
    ("ArdSG", "paper-gpt-4o", 30, 0.367, None, 60.55, 13321.0),
    ("PyCPU-SG", None, 300, 0.520, 3.79, 73.33, 10143.5),
    ("PyTPU-SG", None, 300, 0.627, 3.00, 75.34, 8803.7),
    ("PyCPU-SG", "paper-phi4", 60, 0.800, 2.383, 40.34, 6292.4),  # upstream.md: 40.35, see below
    ("PyTPU-SG", "paper-gemma3-27b", 60, 0.033, 4.950, 146.14, 15264.6),
]


@pytest.fixture(scope="module")
def paper(tmp_path_factory):
    """Import once, write a normal report folder, read it back: the figures come from results.json."""
    out = tmp_path_factory.mktemp("paper-baseline")
    baseline.import_to(PAPER_DIR, out)
    records, provenance, complete = report.load_results(out / "results.json")
    return records, provenance, complete, out


@needs_paper
def test_paper_figures_reproduced(paper):
    records, provenance, complete, _ = paper
    assert complete and is_baseline(provenance) and len(records) == 3 * 30 + 5 * 120
    by_stage = {g.stage: g for g in stats.group_stats(records, ("stage",), baseline=True)}
    by_model = {(g.key["stage"], g.key["model"]): g for g in stats.group_stats(records, _family, baseline=True)}
    for stage, model, n, rate, attempts, latency, tokens in UPSTREAM:
        g = by_stage[stage] if model is None else by_model[(stage, model)]
        where = f"{stage} {model or 'pooled'}"
        assert g.runs == n, where
        assert round(g.rate, 3) == rate, where
        assert round(g.latency_s["all"]["mean"], 2) == latency, where
        assert round(g.tokens["all"]["mean"], 1) == tokens, where
        if attempts is None:  # the microcontroller files publish no attempt count
            assert g.attempts_known == 0 and math.isnan(g.mean_attempts) and g.success_by_attempt is None, where
        else:
            assert g.attempts_known == n and round(g.mean_attempts, 3) == attempts, where
        assert g.baseline and math.isnan(g.silent_failure_rate), where  # no strict oracle: not measurable
    # exact values behind the rounded ones
    assert by_stage["PyCPU-SG"].successes == 156 and by_stage["PyTPU-SG"].successes == 188
    assert by_stage["PyCPU-SG"].mean_attempts == pytest.approx(1137 / 300)
    assert by_stage["PyTPU-SG"].mean_attempts == pytest.approx(3.0)
    assert by_model[("PyTPU-SG", "paper-gemma3-27b")].successes == 2
    # upstream.md prints 40.35 for phi4 PyCPU-SG latency; the file's 60 latencies sum to 2420.69 s,
    # a mean of 40.344833..., which rounds to 40.34 (40.35 needs double rounding via 40.345).
    assert by_model[("PyCPU-SG", "paper-phi4")].latency_s["all"]["mean"] == pytest.approx(2420.69 / 60, abs=1e-9)
    # the MCU stages publish cost (gpt-4o); Ollama runs have none: unknown, never 0
    assert by_stage["MC"].cost_usd["all"]["mean"] == pytest.approx(0.0063, abs=5e-5)
    assert math.isnan(by_stage["PyCPU-SG"].cost_usd["all"]["mean"])


@needs_paper
def test_paper_records_shape(paper):
    records, provenance, _, out = paper
    ids = sorted({r.model_id for r in records})
    assert "paper-gpt-4o" in ids and "paper-phi4-p" in ids and "paper-phi4-np" in ids
    assert "paper-qwen2.5-coder-14b-np" in ids and "paper-gemma3-27b-p" in ids and len(ids) == 11
    assert {r.stage for r in records} == {"DP", "MC", "ArdSG", "PyCPU-SG", "PyTPU-SG"}
    assert all(r.case == r.stage and not r.scripted for r in records)
    assert set(provenance["baseline"]["files"]) == {p.name for p in PAPER_DIR.glob("*.csv")}
    py = next(r for r in records if r.model_id == "paper-phi4-p")
    assert py.params == {"temperature": 0.1, "top_p": 0.3, "paper_parameters": "P"}
    assert py.attempts[0].step == stats.RUN_TOTAL_STEP
    # the per-(stage, model) summary written by the import agrees
    summary = stats.summarise(records, baseline=True).set_index(["case", "model_id"])
    assert summary.loc[("DP", "paper-gpt-4o"), "strict_successes"] == 27
    assert (out / "stats.json").is_file() and (out / "summary.csv").is_file()


# --------------------------------------------------------------------------------------------
# format details, on small hand-written files (no paper files needed)

MCU = ("\ufeffnum_run,name,trace_id,latency,total_tokens,total_cost,status,batch_id,tags,prompt_tokens,"
       "completion_tokens,prompt_cost,completion_cost,status\n"
       "0,a_sg,t0,10.5,1000,0.01,success,b,\"x,y\",600,400,0.003,0.007,success\n"
       "1,b_sg,t1,20.5,3000,0.03,error,b,\"x,y\",2000,1000,0.01,0.02,error\n")
PY = ("\ufeffrun_name,processor,model,parameters,status,generation_count,latency,total_tokens,prompt_tokens,"
      "completion_tokens,parameters,timestamp,test_date,category,trace_id,batch_id\n"
      "r1,psg,qwen14,P,success,2,30.0,5000,4000,1000,P,1754351390,08.10,qwen2.5-coder:14b_psg_P,t,b\n"
      "r2,psg,qwen14,P,Failure,5,50.0,9000,7000,2000,P,1754351490,08.10,qwen2.5-coder:14b_psg_P,t,b\n"
      "r3,tpusg,qwen14,NP,success,1,10.0,2000,1500,500,NP,1754351590,08.10,qwen2.5-coder:14b_tpusg_NP,t,b\n")


@pytest.fixture
def small(tmp_path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "SG_MCU_data_by_run.csv").write_text(MCU, encoding="utf-8")
    (src / "qwen14b_Py-CPU_Py-TPU_data_by_run.csv").write_text(PY, encoding="utf-8")
    return src


def test_import_small_files(small):
    records, provenance = baseline.import_paper(small)
    assert [r.model_id for r in records] == ["paper-gpt-4o", "paper-gpt-4o", "paper-qwen2.5-coder-14b-p",
                                             "paper-qwen2.5-coder-14b-p", "paper-qwen2.5-coder-14b-np"]
    sg_ok, sg_err, py_ok, py_fail, tpu = records
    assert (sg_ok.stage, sg_ok.case, sg_ok.repetition, sg_ok.status) == ("ArdSG", "ArdSG", 1, RunStatus.SUCCESS)
    assert sg_err.status == RunStatus.FAILURE and not sg_err.strict_success and not sg_err.legacy_success
    assert len(sg_ok.attempts) == 1 and sg_ok.attempts[0].cost_usd == 0.01 and sg_ok.attempts[0].prompt_tokens == 600
    assert py_ok.model == "ollama/qwen2.5-coder:14b" and py_ok.stage == "PyCPU-SG" and tpu.stage == "PyTPU-SG"
    assert py_fail.status == RunStatus.FAILURE  # "Failure": labels are normalised
    assert (py_ok.repetition, py_fail.repetition, tpu.repetition) == (1, 2, 1)
    assert py_ok.started_at == "2025-08-04T23:49:50+00:00"
    assert [a.number for a in py_ok.attempts] == [0, 1, 2]
    assert [a.legacy.passed for a in py_ok.attempts[1:]] == [False, True]
    assert all(not a.legacy.passed for a in py_fail.attempts[1:]) and len(py_fail.attempts) == 6
    assert all(a.strict is None and a.code is None for a in py_ok.attempts)
    assert provenance["baseline"]["source"] == "paper" and provenance["scripted_standin"] is False

    runs = stats.runs_frame(records)
    assert list(runs.tokens) == [1000, 3000, 5000, 9000, 2000]
    assert list(runs.attempts.astype("Float64").fillna(-1)) == [-1, -1, 2, 5, 1]
    assert runs.cost_usd[0] == 0.01 and math.isnan(runs.cost_usd[2])
    (cpu,) = [g for g in stats.group_stats(records) if g.stage == "PyCPU-SG"]
    assert cpu.success_by_attempt == [0.0, 0.5, 0.5, 0.5, 0.5] and cpu.mean_attempts == 3.5


def test_import_rejects_unknown_labels_and_empty_dirs(small, tmp_path):
    path = small / "qwen14b_Py-CPU_Py-TPU_data_by_run.csv"
    path.write_text(PY.replace("Failure", "maybe"), encoding="utf-8")
    with pytest.raises(baseline.BaselineError, match="unknown status 'maybe'"):
        baseline.import_paper(small)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(baseline.BaselineError, match="none of the paper"):
        baseline.import_paper(empty)
    assert not is_baseline({}) and not is_baseline(None)


# summary.csv column -> where stats.json holds the same number (every summary column has one)
SUMMARY_IN_STATS = {
    "case": ("case",), "model_id": ("model_id",), "strategy": ("strategy",), "tier": ("tier",), "runs": ("runs",),
    "finished": ("finished",),
    "strict_successes": ("successes",), "strict_rate": ("rate",), "strict_ci_low": ("ci_low",),
    "strict_ci_high": ("ci_high",), "legacy_successes": ("legacy_successes",), "legacy_rate": ("legacy_rate",),
    "legacy_ci_low": ("legacy_ci_low",), "legacy_ci_high": ("legacy_ci_high",),
    "silent_failures": ("silent_failures",), "silent_failure_rate": ("silent_failure_rate",),
    "stopped_early": ("stopped_early",),
    "crashed": ("crashed",), "incomplete": ("incomplete",), "errors": ("statuses", "error"),
    "mean_attempts": ("mean_attempts",), "median_attempts": ("median_attempts",),
    "mean_attempts_per_step": ("mean_attempts_per_step",), "mean_repairs": ("mean_repairs",),
    "repeated_answers": ("repeated_answers",), "repeated_answer_rate": ("repeated_answer_rate",),
    "stuck_retries": ("stuck_retries",), "stuck_rate": ("stuck_rate",),
    "mean_latency_s": ("latency_s", "all", "mean"), "median_latency_s": ("latency_s", "all", "median"),
    "mean_tokens": ("tokens", "all", "mean"), "total_tokens": ("tokens", "all", "total"),
    "mean_cost_usd": ("cost_usd", "all", "mean"), "total_cost_usd": ("cost_usd", "all", "total"),
    "scripted": ("scripted",), "human": ("human",),
}


def _in_stats(group: dict, path: tuple[str, ...]):
    value = group
    for part in path:
        value = value.get(part, 0 if path[0] == "statuses" else None)
    return value


def _same(csv_value, json_value) -> bool:
    if json_value is None:  # JSON writes NaN as null
        return pd.isna(csv_value)
    if isinstance(json_value, str) or isinstance(json_value, bool):
        return csv_value == json_value
    return not pd.isna(csv_value) and csv_value == pytest.approx(json_value, rel=1e-12, abs=0)


def test_summary_csv_and_stats_json_agree_for_a_baseline_import(small, tmp_path):
    out = tmp_path / "baseline"
    baseline.import_to(small, out)
    assert set(SUMMARY_IN_STATS) == set(stats.SUMMARY_COLUMNS)
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns) == stats.SUMMARY_COLUMNS
    groups = json.loads((out / "stats.json").read_text())["groups"]
    summary_json = json.loads((out / "summary.json").read_text())["summary"]
    assert len(summary) == len(groups) == len(summary_json) == 3
    for row, group, json_row in zip(summary.to_dict(orient="records"), groups, summary_json):
        for column, path in SUMMARY_IN_STATS.items():
            assert _same(row[column], _in_stats(group, path)), (group["label"], column, row[column])
            assert _same(row[column], json_row[column]), (group["label"], column)
        # no strict oracle on the paper's runs: not measurable in every file, never 0
        assert math.isnan(row["silent_failure_rate"]) and group["silent_failure_rate"] is None
    mcu = summary.set_index("model_id").loc["paper-gpt-4o"]
    assert mcu.total_cost_usd == pytest.approx(0.04) and mcu.total_tokens == 4000 and math.isnan(mcu.mean_attempts)
