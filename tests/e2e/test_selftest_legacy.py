"""The self-test judges a reference by the paper's legacy check too (issue 22): a case whose
reference fails it punishes correct programs. pysg/shapes_video_edgetpu's reference passes it on
the loopback_ssh board (real sshd, real LiteRT, the board's LiteRT fix)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pytest_autopilot.core.records import Check, Verdict
from pytest_autopilot.results.selftest import SelfTestResult, judge

ROOT = Path(__file__).resolve().parents[2]


def _reference() -> SelfTestResult:
    return SelfTestResult(nodeid="n", case="c.yaml", solution="ref.py", step="code", expected="accepted")


def test_a_reference_failing_the_legacy_check_is_a_problem():
    strict = Verdict.from_checks("vision_detection", [Check("detections", True)])
    legacy = Verdict.from_checks("legacy", [Check("exit_code_0", True), Check("no_error_markers", False, "error:")])
    result = judge(_reference(), strict, "", legacy)
    assert result.legacy_accepted is False and "punishes a correct program" in result.problem
    assert "no_error_markers: error:" in result.problem
    clean = judge(_reference(), strict, "", Verdict.from_checks("legacy", [Check("exit_code_0", True)]))
    assert clean.legacy_accepted is True and clean.problem is None


def test_the_edgetpu_reference_passes_legacy_on_the_loopback_board(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    done = subprocess.run([sys.executable, "-m", "pytest", "cases/pysg/shapes_video_edgetpu.yaml", "--autopilot-self-test",
                           "-k", "reference", "-p", "no:cacheprovider", "-q", "--autopilot-reports-dir",
                           str(tmp_path / "reports")], cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    (report,) = (tmp_path / "reports").glob("*/selftest.json")
    (reference,) = [r for r in json.loads(report.read_text())["variants"] if r["solution"].endswith("reference.py")]
    assert (reference["verdict"], reference["legacy_accepted"], reference["problem"]) == ("accepted", True, None)
