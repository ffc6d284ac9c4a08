"""Sharding, a Ctrl+C'd sweep (its partial report) and resuming it, and re-scoring archived programs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_autopilot.results.merge import MergeError, merge_results


def _runs(folder: Path) -> list[dict]:
    return json.loads((folder / "results.json").read_text())["runs"]


def _key(runs):
    return [(r["nodeid"], r["status"], len(r["attempts"])) for r in sorted(runs, key=lambda r: r["nodeid"])]


def test_shards_are_disjoint_and_merge_into_the_single_machine_run(toy_project, pytester):
    base = ["cases", "--autopilot-runs", "6", "--record-mode", "once", "-p", "no:xdist"]
    pytester.runpytest(*base, "--autopilot-run-id", "full")
    pytester.runpytest(*base, "--autopilot-run-id", "s1", "--autopilot-shard", "1/2")
    pytester.runpytest(*base, "--autopilot-run-id", "s2", "--autopilot-shard", "2/2")
    reports = toy_project / "reports"
    s1, s2 = _runs(reports / "s1"), _runs(reports / "s2")
    assert s1 and s2 and not {r["nodeid"] for r in s1} & {r["nodeid"] for r in s2}
    from pytest_autopilot.cli import main

    assert main(["merge", str(reports / "merged"), str(reports / "s1"), str(reports / "s2")]) == 0
    assert _key(_runs(reports / "merged")) == _key(_runs(reports / "full"))
    summary = lambda d: [{k: v for k, v in row.items() if "latency" not in k}
                         for row in json.loads((reports / d / "summary.json").read_text())["summary"]]
    assert summary("merged") == summary("full")
    with pytest.raises(MergeError, match="merge disjoint shards only"):
        merge_results([reports / "s1", reports / "full"], reports / "bad")
    assert main(["merge", str(reports / "bad"), str(reports / "s1"), str(reports / "full")]) == 2


def test_resume_continues_an_interrupted_sweep_without_repeats(toy_project, interruptible):
    (toy_project / "cases/toy/answer/solutions/bad_sleep.py").write_text("import time\ntime.sleep(3600)\n")
    case = toy_project / "cases/toy/answer.yaml"
    text = case.read_text().replace("      - {file: answer/solutions/bad_die.py",
                                    "      - {file: answer/solutions/bad_sleep.py, why: hangs}\n      - {file: answer/solutions/bad_die.py")
    text += "timeouts: {run_s: 1800}\n"  # the sleeper never ends by itself: only the Ctrl+C stops it
    case.write_text(text.replace("  - {code: [reference]}\n", "  - {code: [bad_sleep]}\n"))
    args = [sys.executable, "-m", "pytest", "cases", "--autopilot-runs", "3", "--record-mode", "once",
            "-p", "no:xdist", "-p", "no:cacheprovider"]
    proc = subprocess.Popen([*args, "--autopilot-run-id", "sweep"], cwd=toy_project,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=interruptible)
    journal = toy_project / "reports/sweep/journal/master.jsonl"
    deadline = time.monotonic() + 300  # generous: a loaded machine starts pytest slowly
    while time.monotonic() < deadline and not (journal.is_file() and journal.read_text().count('"type": "start"') >= 2):
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=600)  # far below the sleeper's 1800 s limit: it was killed, not awaited
    # the Ctrl+C leaves a partial report marked incomplete: r01 done, r02 cut short, r03 never started
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out[-2000:]
    stopped = json.loads((toy_project / "reports/sweep/results.json").read_text())
    assert stopped["complete"] is False and stopped["incomplete_reason"] == "interrupted (Ctrl+C)"
    assert {r["repetition"]: r["status"] for r in stopped["runs"]} == {1: "success", 2: "incomplete"}
    assert "INCOMPLETE" in out

    case.write_text(text)  # the hang is fixed; resume
    out = subprocess.run([*args, "--autopilot-resume", "sweep"], cwd=toy_project, capture_output=True, text=True,
                         timeout=300)
    assert "1 deselected" in out.stdout, out.stdout[-2000:]  # r01 finished before the stop: not repeated
    data = json.loads((toy_project / "reports/sweep/results.json").read_text())
    assert data["complete"] is True and data["provenance"]["resumed"] is True
    reps = sorted(r["repetition"] for r in data["runs"])
    assert reps == [1, 2, 3]  # no duplicates
    assert {r["repetition"]: r["status"] for r in data["runs"]} == {1: "success", 2: "success", 3: "failure"}
    starts = [json.loads(line)["run"]["repetition"] for line in journal.read_text().splitlines()
              if json.loads(line)["type"] == "start"]
    assert starts.count(1) == 1 and starts.count(2) == 2


def test_rescore_archived_programs_without_llm(toy_project, pytester):
    archive = toy_project / "published_runs"
    archive.mkdir()
    for i, name in enumerate(("reference.py", "bad_no_output.py", "bad_wrong.py"), start=1):
        src = toy_project / "cases/toy/answer/solutions" / name
        (archive / f"run{i:02d}.py").write_text(src.read_text())
    result = pytester.runpytest("cases", "--autopilot-rescore", "published_runs", "-p", "no:xdist",
                                           "--autopilot-run-id", "rescore")
    assert result.parseoutcomes() == {"passed": 1, "rejected": 2}  # judged programs are a measurement, not failures
    runs = {r["nodeid"].split("[")[1].rstrip("]"): r for r in _runs(toy_project / "reports/rescore")}
    assert sorted(runs) == ["archive-published_runs-run01", "archive-published_runs-run02", "archive-published_runs-run03"]
    assert all(len(r["attempts"]) == 1 and r["cassette"] is None for r in runs.values())
    assert [runs[k]["strict_success"] for k in sorted(runs)] == [True, False, False]
    assert [runs[k]["legacy_success"] for k in sorted(runs)] == [True, True, True]  # two silent failures
    summary = json.loads((toy_project / "reports/rescore/summary.json").read_text())["summary"][0]
    assert summary["silent_failures"] == 2 and summary["model_id"] == "archive-published_runs"
