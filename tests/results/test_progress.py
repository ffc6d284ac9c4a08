"""The live progress line: its text, when it is shown, and a sweep drawing it (with and without xdist)."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

import pytest
from child_session import run_session

from pytest_autopilot.core.records import Attempt, RunRecord
from pytest_autopilot.results.progress import Tally, wanted


def _record(success: bool, duration_s: float, latencies: list[float | None]) -> RunRecord:
    attempts = [Attempt(step="code", item=None, number=i + 1, prompt_hash="h", prompt="p", latency_s=lat)
                for i, lat in enumerate(latencies)]
    return RunRecord(nodeid="n", case="c", stage="DP", model_id="m", model="m", params={}, repetition=1,
                     status="success" if success else "failure", strict_success=success, legacy_success=success,
                     attempts=attempts, duration_s=duration_s)


def test_the_line_counts_runs_successes_eta_and_llm_wait():
    tally = Tally(total=40)
    assert tally.line(0.0) == "autopilot: 0/40 runs | strict successes 0 | ETA - | LLM wait -"
    tally.add(_record(True, 10.0, [2.0, 3.0]))
    tally.add(_record(False, 30.0, [None, 5.0]))  # an attempt without a latency (no LLM call) counts 0
    tally.add(_record(True, 0.0, []))
    tally.done = 4  # one item without a run record (e.g. a skip) still counts as done
    # 4 runs in 100 s of wall time: 25 s each, 36 to go; LLM 10 s of 40 s run time
    assert tally.line(100.0) == "autopilot: 4/40 runs | strict successes 2 | ETA 15m00s | LLM wait 25%"
    tally.done = 40
    assert "ETA 0s" in tally.line(100.0)
    assert "ETA 2h05m" in Tally(total=4, done=1).line(2500.0)


class _Reporter:
    def __init__(self, tty: bool):
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(("mode", "tty", "verbosity", "ci", "shown"), [
    ("auto", True, 0, False, True),
    ("auto", True, 1, False, True),
    ("auto", False, 0, False, False),  # piped, a log file
    ("auto", True, 0, True, False),  # CI, even with a terminal
    ("auto", True, -1, False, False),  # -q
    ("on", False, 0, True, True),
    ("on", False, -1, False, False),  # -q stays quiet
    ("off", True, 0, False, False),
])
def test_when_the_line_is_shown(mode, tty, verbosity, ci, shown):
    assert wanted(mode, _Reporter(tty), verbosity, ci) is shown
    assert wanted(mode, None, verbosity, ci) is False  # no terminal reporter (-p no:terminal)


SWEEP = ["cases", "--autopilot-runs", "3", "--record-mode", "once"]


@pytest.mark.parametrize("workers", [["-p", "no:xdist"], ["-n", "2"]], ids=["no-xdist", "xdist"])
def test_a_sweep_draws_the_line_when_forced_on(toy_project, pytester, workers):
    result = run_session(pytester, *SWEEP, *workers, "--autopilot-progress", "on")
    result.assert_outcomes(passed=2, failed=1)
    out = result.stdout.str()
    for done in (1, 2, 3):
        assert f"autopilot: {done}/3 runs | strict successes " in out
    assert "autopilot: 3/3 runs | strict successes 2 | ETA 0s | LLM wait " in out
    assert "\x1b[2K" in out and "\x1b[1A" in out  # drawn below pytest's line, the cursor put back


def test_no_line_under_q_nor_when_not_a_terminal(toy_project, pytester):
    quiet = pytester.runpytest(*SWEEP, "-p", "no:xdist", "-q", "--autopilot-progress", "on")
    quiet.assert_outcomes(passed=2, failed=1)
    piped = pytester.runpytest(*SWEEP, "-p", "no:xdist")  # auto, stdout captured (not a terminal)
    piped.assert_outcomes(passed=2, failed=1)
    for result in (quiet, piped):
        assert "autopilot: " not in result.stdout.str() and "\x1b[1A" not in result.stdout.str()


def test_auto_draws_the_line_on_a_terminal(toy_project):
    """``auto`` under a pseudo-terminal (what a person running the sweep sees), outside CI."""
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "pytest", *SWEEP, "-p", "no:xdist", "-p", "no:cacheprovider"],
                            cwd=toy_project, env=env, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower)
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    assert proc.wait(timeout=300) == 1  # one run fails
    assert b"autopilot: 3/3 runs | strict successes 2 | ETA 0s" in out
