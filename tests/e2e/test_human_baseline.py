"""The human baseline end to end: a test "person" (a thread, or a process's files) answers the real
repair loop through request/answer files; the run is recorded to a cassette that replays offline
with nobody answering; a missing answer is one line; Ctrl+C stops the session cleanly. No part is
mocked: the person is the only stand-in, because no person sits at this machine during the tests."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

DEADLINE_S = 300  # generous: the machine is shared; nothing here asserts a duration
RUN_FOLDER = "human/toy/answer/human-ann-r01"


def fenced(code: str) -> str:
    return f"Here is my program.\n\n```python\n{code}```\n"


class Person(threading.Thread):
    """Watches a run's folder for request-NN.md and answers each with the next text, atomically
    (written under another name, then renamed), as the README tells a person to."""

    def __init__(self, folder: Path, answers: list[str]):
        super().__init__(daemon=True)
        self.folder, self.answers, self.requests = folder, answers, []

    def run(self) -> None:
        for number, text in enumerate(self.answers, start=1):
            request = self.folder / f"request-{number:02d}.md"
            deadline = time.monotonic() + DEADLINE_S
            while not request.is_file() and time.monotonic() < deadline:
                time.sleep(0.05)
            if not request.is_file():
                return
            self.requests.append(request.read_text())
            draft = self.folder / "draft.md"
            draft.write_text(text)
            os.replace(draft, self.folder / f"answer-{number:02d}.md")


def report(root: Path, run_id: str) -> dict:
    return json.loads((root / "reports" / run_id / "results.json").read_text())


def test_a_person_answers_the_real_loop_and_the_recording_replays_offline(toy_project, toy_sources, pytester,
                                                                           refuse_network):
    person = Person(toy_project / "reports/rec" / RUN_FOLDER,
                    [fenced(toy_sources["solutions"]["bad_no_output.py"]),
                     fenced(toy_sources["solutions"]["reference.py"])])
    person.start()
    recorded = pytester.runpytest_subprocess("cases", "--autopilot-llm", "human/ann", "--record-mode", "once",
                                  "--autopilot-run-id", "rec", "-p", "no:xdist")
    person.join(timeout=DEADLINE_S)
    recorded.assert_outcomes(passed=1)
    # the path was printed although pytest captured the test's output
    recorded.stdout.fnmatch_lines([f"*autopilot human baseline: read *{RUN_FOLDER}/request-01.md*answer-01.md*",
                                   f"*autopilot human baseline: read *{RUN_FOLDER}/request-02.md*answer-02.md*"])
    assert len(person.requests) == 2
    assert "Write a Python program that writes 42 to out.txt" in person.requests[0]
    assert "out.txt missing" in person.requests[1]  # the repair prompt carries the oracle's finding

    (run,) = report(toy_project, "rec")["runs"]
    assert run["human"] is True and run["scripted"] is False and run["model_id"] == "human-ann"
    assert [a["category"] for a in run["attempts"]] == ["artifact_missing", None]
    assert all(a["cost_usd"] == 0.0 for a in run["attempts"])
    folder = toy_project / "reports/rec"
    assert report(toy_project, "rec")["provenance"]["human_baseline"] is True
    (row,) = csv.DictReader((folder / "summary.csv").open())
    assert row["human"] == "True" and row["scripted"] == "False"
    (group,) = json.loads((folder / "stats.json").read_text())["groups"]
    assert group["human"] is True
    html = (folder / "report.html").read_text()
    assert "human baseline (a person, not an LLM)" in html and 'id="human-warning"' in html
    assert "^ answers came from a person" in recorded.stdout.str()

    cassette = toy_project / "cassettes/toy/answer/human-ann-r01.yaml"
    text = cassette.read_text()
    assert "human-baseline-has-no-key" not in text and str(toy_project) not in text

    # Replay: nobody answers and no socket may connect anywhere.
    refuse_network(toy_project)
    replayed = pytester.runpytest_subprocess("cases", "--autopilot-llm", "human/ann", "--record-mode", "none",
                                             "--autopilot-run-id", "replay", "-p", "no:xdist")
    replayed.assert_outcomes(passed=1)
    assert not (toy_project / "reports/replay/human").exists()  # no request was written: no one was asked
    (again,) = report(toy_project, "replay")["runs"]
    strip = lambda r: [(a["prompt_hash"], a["code"], a["category"]) for a in r["attempts"]]
    assert strip(again) == strip(run) and again["human"] is True


def test_no_answer_in_time_stops_the_run_with_one_line(toy_project, pytester):
    result = pytester.runpytest("cases", "--autopilot-llm", "human/ann", "--record-mode", "once",
                                "--autopilot-human-timeout", "0.5", "--autopilot-run-id", "late", "-p", "no:xdist")
    result.assert_outcomes(failed=1)
    (run,) = report(toy_project, "late")["runs"]
    assert run["status"] == "error" and "\n" not in run["error"]
    assert run["error"].startswith("llm_api_error: human baseline: no answer at ")
    assert f"{RUN_FOLDER}/answer-01.md within 0.5 s" in run["error"]
    assert not (toy_project / "cassettes/toy/answer/human-ann-r01.yaml").exists()  # nothing half-recorded


@pytest.mark.parametrize("value", ["0", "-5", "soon"])
def test_a_human_timeout_that_is_not_a_positive_number_is_a_usage_error(toy_project, pytester, value):
    result = pytester.runpytest("cases", "--autopilot-llm", "human/ann", f"--autopilot-human-timeout={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*argument --autopilot-human-timeout: expected a number of seconds > 0, got '{value}'*"])


def test_ctrl_c_while_waiting_for_the_person_ends_the_session_cleanly(toy_project, interruptible):
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "cases", "--autopilot-llm", "human/ann",
                             "--record-mode", "once", "--autopilot-run-id", "intr", "-p", "no:xdist",
                             "-p", "no:cacheprovider"],
                            cwd=toy_project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=interruptible)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline and not any("autopilot human baseline: read" in ln for ln in lines):
        time.sleep(0.1)
    # seen live, while the test ran under pytest's capture
    assert any(f"{RUN_FOLDER}/request-01.md" in ln for ln in lines), "".join(lines)[-2000:]
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=DEADLINE_S)
    reader.join(timeout=DEADLINE_S)
    out = "".join(lines)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out[-2000:]
    data = report(toy_project, "intr")
    assert data["complete"] is False and data["incomplete_reason"] == "interrupted (Ctrl+C)"
    assert [r["status"] for r in data["runs"]] == ["incomplete"]
    assert not list((toy_project / "cassettes").rglob("*.yaml*"))  # neither a cassette nor a .partial
    assert "Traceback" not in out
