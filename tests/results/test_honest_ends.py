"""Every way a sweep ends leaves an honest report: SIGTERM (how ``timeout`` and a cancelled CI job
stop pytest) writes the partial report as Ctrl+C does; a worker crash makes results.json say
``"complete": false`` with the reason and the session exit 6 (set-up trouble). Subprocesses: these
test a signal and a dying xdist worker."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

EXIT_SETUP = 6


def _results(root, run_id: str) -> dict:
    return json.loads((root / "reports" / run_id / "results.json").read_text())


def test_sigterm_writes_the_partial_report_marked_incomplete(toy_project):
    # r02's program sleeps far beyond the deadline below: the stop is prompt only if the harness kills it
    (toy_project / "cases/toy/answer/solutions/bad_sleep.py").write_text("import time\ntime.sleep(3600)\n")
    case = toy_project / "cases/toy/answer.yaml"
    case.write_text(case.read_text()
                    .replace("      - {file: answer/solutions/bad_die.py",
                             "      - {file: answer/solutions/bad_sleep.py, why: hangs}\n      - {file: answer/solutions/bad_die.py")
                    .replace("  - {code: [reference]}\n", "  - {code: [bad_sleep]}\n") + "timeouts: {run_s: 1800}\n")
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "cases", "--autopilot-runs", "3", "--record-mode", "once",
                             "--autopilot-run-id", "term", "-p", "no:xdist", "-p", "no:cacheprovider"],
                            cwd=toy_project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    journal = toy_project / "reports/term/journal/master.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # wait until r02 (the sleeper) has started
        if journal.is_file() and journal.read_text().count('"type": "start"') >= 2:
            break
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out[-2000:]
    data = _results(toy_project, "term")
    assert data["complete"] is False and data["incomplete_reason"] == "interrupted (SIGTERM)"
    by_rep = {r["repetition"]: r["status"] for r in data["runs"]}
    assert by_rep == {1: "success", 2: "incomplete"}
    folder = toy_project / "reports/term"
    assert {"summary.json", "summary.csv", "stats.json", "report.html"} <= {p.name for p in folder.iterdir()}
    assert "INCOMPLETE:</b> interrupted (SIGTERM)" in (folder / "report.html").read_text()
    assert "report (INCOMPLETE: interrupted (SIGTERM))" in out


def test_a_worker_crash_makes_the_report_incomplete_and_exits_6(toy_project, monkeypatch):
    monkeypatch.setenv("AUTOPILOT_TOY_DIE", "1")  # the toy oracle kills its worker on r02's answer
    case = toy_project / "cases/toy/answer.yaml"
    case.write_text(case.read_text().replace("  - {code: [reference]}\n", "  - {code: [bad_die]}\n"))
    done = subprocess.run([sys.executable, "-m", "pytest", "cases", "-n", "2", "--autopilot-runs", "3",
                           "--record-mode", "once", "--autopilot-run-id", "crash", "-p", "no:cacheprovider"],
                          cwd=toy_project, capture_output=True, text=True, timeout=600)
    assert done.returncode == EXIT_SETUP, done.stdout[-3000:]
    data = _results(toy_project, "crash")
    assert data["complete"] is False and data["incomplete_reason"] == "1 run(s) crashed (their worker died)"
    assert sorted(r["status"] for r in data["runs"]) == ["crashed", "failure", "success"]
    assert "gate: set-up trouble, not a model result (exit 6): 1 run(s) crashed" in done.stdout
