"""A pipeline that stopped early is not a pipeline result (issue 22). Five committed real-model
runs of dp/fruit_pipeline stopped at the plan step: no operation program was ever written, yet
they were reported as legacy successes and silent failures. Replayed offline from their committed
cassettes (no model, no server), they must say where they stopped, keep their per-step verdicts,
and be neither legacy successes nor silent failures."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
CASSETTES = ROOT / "cassettes/dp/fruit_pipeline"
STOPPED_AT_PLAN = ("local-qwen2.5-coder-0.5b-r01", "local-qwen2.5-coder-0.5b-r02", "local-qwen2.5-coder-0.5b-r03",
                   "local-qwen2.5-coder-0.5b-conversation-r01", "local-qwen2.5-coder-1.5b-r01")


def test_runs_stopped_at_the_plan_replay_as_stopped_not_as_silent_failures(tmp_path):
    assert all((CASSETTES / f"{name}.yaml").is_file() for name in STOPPED_AT_PLAN)
    selected = " or ".join(f"[{name}]" for name in STOPPED_AT_PLAN).replace("[", "").replace("]", "")
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "cases/dp/fruit_pipeline.yaml", "-p", "no:cacheprovider", "-p", "no:xdist",
         "--autopilot-llm", "local/qwen2.5-coder-0.5b", "--autopilot-llm", "local/qwen2.5-coder-1.5b",
         "--autopilot-repair-strategy", "stateless", "--autopilot-repair-strategy", "conversation",
         "--autopilot-runs", "3", "--autopilot-recorded-only", "--record-mode", "none",
         "--autopilot-cassette-check", "error", "--autopilot-reports-dir", str(tmp_path), "--autopilot-run-id", "r",
         "-k", selected],
        cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert "cassette_miss" not in out.stdout, out.stdout[-3000:]
    runs = {r["nodeid"].split("[")[1].rstrip("]"): r for r in json.loads((tmp_path / "r/results.json").read_text())["runs"]}
    assert sorted(runs) == sorted(STOPPED_AT_PLAN), out.stdout[-3000:]
    for name, run in runs.items():
        assert run["status"] == "failure" and not run["strict_success"], (name, run["error"])
        assert (run["stopped_at_step"], run["stopped_step"], run["steps_total"]) == (1, "plan", None), name
        assert run["legacy_success"] is False, name
        assert {a["step"] for a in run["attempts"]} == {"plan"} and all(a["legacy"] for a in run["attempts"])
    with (tmp_path / "r/runs.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["silent_failure"], r["stopped_at_step"], r["stopped_step"]) for r in rows} == {("False", "1", "plan")}
    with (tmp_path / "r/summary.csv").open(newline="") as fh:
        summary = list(csv.DictReader(fh))
    assert sum(int(r["silent_failures"]) for r in summary) == 0
    assert sum(int(r["stopped_early"]) for r in summary) == len(STOPPED_AT_PLAN)
    assert "stopped at step 1 of ? (plan)" in (tmp_path / "r/report.html").read_text()
    assert "5 run(s) stopped before their pipeline's last step" in out.stdout
