"""A pipeline that stopped early is not a pipeline result (issue 22). The real-model runs of
dp/fruit_pipeline that stopped at the plan step were recorded with requests the harness no longer
sends (removed with issue 22's request changes); the scripted stand-in's r04 stops the same way, at
step 8 of 9 (its split operation never passes; r08 repeats it exactly:
test_repeated_standin_cassettes_equal_their_scripts). Replayed offline from their committed
cassettes, they must say where they stopped, keep their per-step verdicts (each step passed the
paper's check), and be neither legacy successes nor silent failures."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
CASSETTES = ROOT / "cassettes/dp/fruit_pipeline"
STOPPED = ("scripted-standin-r04",)


def test_runs_stopped_before_the_last_step_replay_as_stopped_not_as_silent_failures(tmp_path):
    assert all((CASSETTES / f"{name}.yaml").is_file() for name in STOPPED)
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "cases/dp/fruit_pipeline.yaml", "-p", "no:cacheprovider", "-p", "no:xdist",
         "--autopilot-llm", "scripted/standin", "--autopilot-runs", "4", "--record-mode", "none",
         "--autopilot-cassette-check", "error", "--autopilot-reports-dir", str(tmp_path), "--autopilot-run-id", "r",
         "-k", " or ".join(STOPPED)],
        cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert "cassette_miss" not in out.stdout, out.stdout[-3000:]
    runs = {r["nodeid"].split("[")[1].rstrip("]"): r for r in json.loads((tmp_path / "r/results.json").read_text())["runs"]}
    assert sorted(runs) == sorted(STOPPED), out.stdout[-3000:]
    for name, run in runs.items():
        assert run["status"] == "failure" and not run["strict_success"], (name, run["error"])
        assert (run["stopped_at_step"], run["stopped_step"], run["steps_total"]) == (8, "operations/split_train_test", 9)
        assert run["legacy_success"] is False, name  # the pipeline never finished: no whole-pipeline verdict
        assert all(a["legacy"] for a in run["attempts"])  # yet every step that ran passed the paper's check
    with (tmp_path / "r/runs.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["silent_failure"], r["stopped_at_step"]) for r in rows} == {("False", "8")}
    with (tmp_path / "r/summary.csv").open(newline="") as fh:
        summary = list(csv.DictReader(fh))
    assert sum(int(r["silent_failures"]) for r in summary) == 0
    assert sum(int(r["stopped_early"]) for r in summary) == len(STOPPED)
    assert "stopped at step 8 of 9" in (tmp_path / "r/report.html").read_text()
    assert "1 run(s) stopped before their pipeline's last step" in out.stdout
