"""The two wrong verdicts of issue 25, on the paper's own archived programs: the tf.lite program
(valid_20250820033028_psg_qwen2.5-coder:14b) now runs and is accepted, and the off-by-one labels
program (valid_20250520022553_psg_qwen2.5-coder:32b) is rejected by labels_drawn. The archive is
the paper's public artifact repository's experimental_data/raw/raspberrypi, not part of this
repository: point AUTOPILOT_PAPER_ARCHIVE at a copy of that folder (the test skips otherwise)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARCHIVE = Path(os.environ.get("AUTOPILOT_PAPER_ARCHIVE", "/tmp/arch/experimental_data/raw/raspberrypi"))
PAPER_ASSETS = ROOT.parent / "shared" / "paper-assets" / "detection"
TF_LITE = "valid_20250820033028_psg_qwen2.5-coder:14b"
OFF_BY_ONE = "valid_20250520022553_psg_qwen2.5-coder:32b"


@pytest.mark.skipif(not (ARCHIVE / TF_LITE).is_dir() or not (ARCHIVE / OFF_BY_ONE).is_dir(),
                    reason=f"the paper's archive is not at {ARCHIVE} (set AUTOPILOT_PAPER_ARCHIVE)")
@pytest.mark.skipif(not (PAPER_ASSETS / "sheeps.mp4").is_file(), reason=f"the paper's assets are not at {PAPER_ASSETS}")
def test_the_issue_programs_get_their_right_verdicts(tmp_path):
    sample = tmp_path / "raspberrypi"
    for name in (TF_LITE, OFF_BY_ONE):
        shutil.copytree(ARCHIVE / name, sample / name)
    env = {**os.environ, "AUTOPILOT_DETECTION_ASSETS": str(PAPER_ASSETS), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "pytest", "cases/pysg/sheeps_paper_faithful.yaml", "-p", "no:xdist",
                          "--autopilot-rescore", str(sample), "--autopilot-run-id", "issue25", "-q",
                          "-p", "no:cacheprovider", "--autopilot-reports-dir", str(tmp_path / "reports")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    runs = {r["params"]["archive_file"].split("/")[0]: r
            for r in json.loads((tmp_path / "reports/issue25/results.json").read_text())["runs"]}
    assert runs[TF_LITE]["strict_success"], out.stdout[-3000:]
    rejected = runs[OFF_BY_ONE]["attempts"][0]["strict"]
    failed = {c["name"]: c["detail"] for c in rejected["checks"] if not c["passed"]}
    assert list(failed) == ["labels_drawn"], failed
    assert "label 'horse'" in failed["labels_drawn"] and "finds 'sheep'" in failed["labels_drawn"]
