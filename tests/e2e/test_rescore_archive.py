"""Re-scoring real archives (``--autopilot-rescore``): the paper's layout as it is (one folder per
program, ``valid_``/``tmp_``, ``:`` in the model names), grouping by a pattern or a manifest,
model ids that are names (never paths), the study-vs-strict table, multi-step cases skipped with
a reason, and (``AUTOPILOT_SCALE_RESCORE=1``) 500 paper-style programs of the faithful case on
2 workers, timed."""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAPER_ASSETS = ROOT.parent / "shared" / "paper-assets" / "detection"

# model -> [(verdict prefix, timestamp, toy solution)]
ARCHIVE = {
    "codestral:latest": [("valid", "20250520022146", "reference.py"), ("valid", "20250520031500", "bad_no_output.py"),
                         ("tmp", "20250520040000", "bad_crash.py")],
    "qwen2.5-coder:32b": [("valid", "20250521101010", "reference.py"), ("valid", "20250521111111", "reference.py")],
    "phi4:latest": [("valid", "20250522090000", "bad_no_output.py"), ("valid", "20250522091500", "bad_wrong.py")],
}

TWO_STEPS = """\
stage: DP
description: two programs
context: {number: 42}
steps:
  - {name: first, prompt: toy/answer.j2, oracle: {name: toy_answer, params: {expected: "42"}}}
  - {name: second, prompt: toy/answer.j2, oracle: {name: toy_answer, params: {expected: "42"}}}
solutions:
  reference: {first: answer/solutions/reference.py, second: answer/solutions/reference.py}
standin:
  - {first: [reference], second: [reference]}
"""


def _paper_archive(project: Path) -> Path:
    """The paper's raw/raspberrypi layout: valid_<time>_psg_<model>/valid_<time>_psg_<model>.py."""
    archive = project / "experimental_data/raw/raspberrypi"
    for model, programs in ARCHIVE.items():
        for verdict, stamp, solution in programs:
            name = f"{verdict}_{stamp}_psg_{model}"
            (archive / name).mkdir(parents=True)
            shutil.copyfile(project / "cases/toy/answer/solutions" / solution, archive / name / f"{name}.py")
    return archive


def _results(project: Path, run_id: str) -> dict:
    return json.loads((project / "reports" / run_id / "results.json").read_text())


def test_rescore_the_papers_layout_per_model_with_the_study_table(toy_project, pytester):
    archive = _paper_archive(toy_project)
    (toy_project / "cases/toy/two_steps.yaml").write_text(TWO_STEPS)
    (toy_project / "cases/toy/two_steps").symlink_to(toy_project / "cases/toy/answer")
    started = time.monotonic()
    result = pytester.runpytest("cases", "--autopilot-rescore", str(archive), "-p", "no:xdist",
                                           "--autopilot-run-id", "paper", "-rs")
    took = time.monotonic() - started
    result.assert_outcomes(passed=3, failed=4, skipped=1)
    out = result.stdout.str()
    assert "two_steps.yaml: --autopilot-rescore judges one program per run; this case has steps ['first', 'second']" in out
    data = _results(toy_project, "paper")
    runs = data["runs"]
    assert {r["model_id"] for r in runs} == {"archive-codestral-latest", "archive-qwen2.5-coder-32b", "archive-phi4-latest"}
    assert {r["model"] for r in runs} == {f"archive/{m}" for m in ARCHIVE}
    for r in runs:  # names, never paths
        for text in (r["model"], r["model_id"], r["nodeid"]):
            assert str(toy_project) not in text and not text.startswith("/")
    by_id = {r["nodeid"].split("[")[1].rstrip("]"): r for r in runs}
    assert "archive-codestral-latest-20250520022146" in by_id
    crash = by_id["archive-codestral-latest-20250520040000"]
    assert crash["params"] == {"archive_file": "tmp_20250520040000_psg_codestral:latest/tmp_20250520040000_psg_codestral:latest.py",
                               "study_run": "20250520040000", "study_verdict": "failure"}
    summary = json.loads((toy_project / "reports/paper/summary.json").read_text())["summary"]
    assert {row["model_id"]: row["runs"] for row in summary} == {
        "archive-codestral-latest": 3, "archive-qwen2.5-coder-32b": 2, "archive-phi4-latest": 2}
    study = {row["model_id"]: row for row in json.loads((toy_project / "reports/paper/study.json").read_text())["study"]}
    assert {k: (v["study_success"], v["legacy_recheck"], v["strict"], v["silent_failures"]) for k, v in study.items()} == {
        "archive-codestral-latest": (2, 2, 1, 1), "archive-qwen2.5-coder-32b": (2, 2, 2, 0), "archive-phi4-latest": (2, 2, 0, 2)}
    assert study["archive-phi4-latest"]["silent_by_first_failed_check"] == {"exists": 1, "value": 1}
    rows = list(csv.DictReader((toy_project / "reports/paper/study.csv").read_text().splitlines()))
    assert [r["model_id"] for r in rows] == sorted(study) and rows[0]["silent_by_first_failed_check"]
    assert "study vs strict" in out
    html = (toy_project / "reports/paper/report.html").read_text()
    assert 'id="table-study"' in html and "archive-phi4-latest" in html and "exists 1, value 1" in html
    software = data["provenance"]["software"]["by_case"]["cases/toy/answer.yaml"]
    assert software == {"environment": "harness venv", "code_rewritten": False}
    print(f"\nre-score of the synthetic paper-layout archive ({len(runs)} programs): {took:.1f} s")

    # -k deselecting the multi-step case: no collection error, nothing skipped
    result = pytester.runpytest("cases", "--autopilot-rescore", str(archive), "-p", "no:xdist",
                                           "--autopilot-run-id", "selected", "-k", "answer")
    result.assert_outcomes(passed=3, failed=4)


def test_rescore_groups_by_a_manifest_or_a_pattern(toy_project, pytester):
    archive = toy_project / "flat"
    archive.mkdir()
    solutions = toy_project / "cases/toy/answer/solutions"
    for name, solution in (("a-1", "reference.py"), ("a-2", "bad_no_output.py"), ("b-7", "reference.py")):
        shutil.copyfile(solutions / solution, archive / f"{name}.py")
    manifest = toy_project / "manifest.csv"
    manifest.write_text("file,model,run,verdict\na-1.py,ollama/gemma3:27b,r1,success\n"
                        "a-2.py,ollama/gemma3:27b,r2,success\nb-7.py,phi4:latest,r7,failure\n")
    result = pytester.runpytest("cases", "--autopilot-rescore", "flat", "--autopilot-rescore-groups",
                                           "manifest.csv", "-p", "no:xdist", "--autopilot-run-id", "manifest")
    result.assert_outcomes(passed=2, failed=1)
    runs = _results(toy_project, "manifest")["runs"]
    assert sorted((r["model_id"], r["params"]["study_run"], r["params"]["study_verdict"]) for r in runs) == [
        ("archive-ollama-gemma3-27b", "r1", "success"), ("archive-ollama-gemma3-27b", "r2", "success"),
        ("archive-phi4-latest", "r7", "failure")]
    study = json.loads((toy_project / "reports/manifest/study.json").read_text())["study"]
    assert [(s["model_id"], s["study_success"], s["silent_failures"]) for s in study] == [
        ("archive-ollama-gemma3-27b", 2, 1), ("archive-phi4-latest", 0, 0)]

    result = pytester.runpytest("cases", "--autopilot-rescore", "flat", "--autopilot-rescore-groups",
                                           r"^(?P<model>[a-z])-(?P<run>\d+)$", "-p", "no:xdist",
                                           "--autopilot-run-id", "pattern")
    result.assert_outcomes(passed=2, failed=1)
    runs = _results(toy_project, "pattern")["runs"]
    assert sorted((r["model_id"], r["repetition"]) for r in runs) == [("archive-a", 1), ("archive-a", 2), ("archive-b", 1)]
    assert not (toy_project / "reports/pattern/study.json").exists()  # no study verdict known: no table

    manifest.write_text("file,run\na-1.py,r1\n")
    result = pytester.runpytest("cases", "--autopilot-rescore", "flat", "--autopilot-rescore-groups",
                                           "manifest.csv", "-p", "no:xdist", "--autopilot-run-id", "bad")
    assert "manifest.csv: row 1: needs the fields file and model" in result.stdout.str() + result.stderr.str()


@pytest.mark.skipif(os.environ.get("AUTOPILOT_SCALE_RESCORE") != "1",
                    reason="the 500-program re-score takes minutes: set AUTOPILOT_SCALE_RESCORE=1 to run it")
def test_rescore_500_paper_style_programs_on_two_workers(tmp_path):
    import subprocess
    import sys

    if not (PAPER_ASSETS / "sheeps.mp4").is_file():
        pytest.skip(f"the paper's detection assets are not at {PAPER_ASSETS}")
    solutions = ROOT / "cases/pysg/sheeps_paper_faithful/solutions"
    cheap = ["bad_single_line.py", "bad_error_opening_exit.py", "bad_placeholder_paths.py"]
    models = ["codestral:latest", "gemma3:27b", "phi4:latest", "qwen2.5-coder:14b", "qwen2.5-coder:32b"]
    archive = tmp_path / "raspberrypi"
    for i in range(500):
        model = models[i % 5]
        name = f"{'tmp' if i % 97 == 3 else 'valid'}_{20250520000000 + i}_psg_{model}"
        (archive / name).mkdir(parents=True)
        program = archive / name / f"{name}.py"
        if i % 100 == 0:  # five correct programs
            shutil.copyfile(solutions / "reference.py", program)
        elif i == 1:  # one that never ends: bounded by the case's time limit
            program.write_text("import time\nwhile True:\n    time.sleep(1)\n")
        else:
            shutil.copyfile(solutions / cheap[i % 3], program)
    env = {**os.environ, "AUTOPILOT_DETECTION_ASSETS": str(PAPER_ASSETS)}
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "pytest", "cases/pysg/sheeps_paper_faithful.yaml", "-n", "2",
                          "--autopilot-rescore", str(archive), "--autopilot-run-id", "scale-rescore", "-q",
                          "-p", "no:cacheprovider", "--autopilot-reports-dir", str(tmp_path / "reports")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    took = time.monotonic() - started
    data = json.loads((tmp_path / "reports/scale-rescore/results.json").read_text())
    assert data["complete"] and len(data["runs"]) == 500, out.stdout[-3000:]
    assert sum(r["strict_success"] for r in data["runs"]) == 5
    hang = next(r for r in data["runs"] if r["params"]["archive_file"].startswith("valid_20250520000001_"))
    assert hang["attempts"][0]["execution"]["timed_out"]
    study = json.loads((tmp_path / "reports/scale-rescore/study.json").read_text())["study"]
    assert len(study) == 5 and sum(s["silent_failures"] for s in study) > 0
    print(f"\nre-scored 500 programs on 2 workers in {took:.0f} s")
