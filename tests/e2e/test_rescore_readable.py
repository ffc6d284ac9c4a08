"""A re-score people can read (issue 25): model ids in full, the study's rejections named apart
from the summary's silent failures, the study table last, judged programs not listed as pytest
failures unless asked (-rf), CSVs naming the archived file and the study verdict, and re-scored
attempts recorded as what they are (the archived file and its hash; no prompt, no response).
The archive is a synthetic paper-layout folder in the test's temp dir."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

from pytest_autopilot.core.util import slug

LONG_MODEL = "hf.co/bartowski/Qwen2.5-Coder-32B-Instruct-GGUF:Q4_K_M-with-a-very-long-tag"
PROGRAMS = [("valid", "20250520022146", "qwen2.5-coder:14b", "reference.py"),
            ("valid", "20250520022553", "qwen2.5-coder:32b", "bad_wrong.py"),
            ("tmp", "20250520030157", "qwen2.5-coder:32b", "bad_no_output.py"),
            ("valid", "20250601000000", LONG_MODEL.replace("/", "_"), "reference.py")]


def _archive(project: Path) -> Path:
    archive = project / "raspberrypi"
    for verdict, stamp, model, solution in PROGRAMS:
        name = f"{verdict}_{stamp}_psg_{model}"
        (archive / name).mkdir(parents=True)
        shutil.copyfile(project / "cases/toy/answer/solutions" / solution, archive / name / f"{name}.py")
    return archive


def test_a_rescore_reads_as_a_measurement(toy_project, pytester):
    archive = _archive(toy_project)
    result = pytester.runpytest("cases", "--autopilot-rescore", str(archive), "-p", "no:xdist",
                                "--autopilot-run-id", "readable")
    assert result.parseoutcomes() == {"passed": 2, "rejected": 2}
    out = result.stdout.str()
    lines = out.splitlines()
    # judged programs: no FAILURES section, no FAILED line; the study table after pytest's closing line
    assert "FAILED" not in out and "= FAILURES =" not in out
    closing = next(i for i, line in enumerate(lines) if "2 passed, 2 rejected" in line)
    study = next(i for i, line in enumerate(lines) if line.startswith("study vs strict"))
    assert study > closing and "autopilot study vs strict" in lines[study - 1]
    table = "\n".join(lines[study:])
    assert "rejected" in table and "not the summary's 'silent'" in table
    summary = "\n".join(lines[:closing])
    # model ids in full: wrapped under themselves when long, never cut
    model_id = "archive-" + slug(LONG_MODEL.replace("/", "_"))
    rows = [line for line in summary.splitlines() if line.startswith(("answer ", "       "))]
    start = next(line for line in summary.splitlines() if line.startswith("case ")).index("model")
    shown = "".join(line[start:].split()[0] for line in rows if line[start:].strip())  # the model column, joined
    assert "archive-qwen2.5-coder-14b" in shown and "archive-qwen2.5-coder-32b" in shown
    assert len(model_id) > 40 and model_id in shown, summary
    assert not any(".." in line for line in rows)  # no clipped name
    assert "silent: silent failures, runs the paper's check" in summary

    report = toy_project / "reports/readable"
    runs = {r["archive_file"]: r for r in csv.DictReader((report / "runs.csv").read_text().splitlines())}
    bad = "tmp_20250520030157_psg_qwen2.5-coder:32b/tmp_20250520030157_psg_qwen2.5-coder:32b.py"
    assert runs[bad]["study_verdict"] == "failure" and runs[bad]["model"] == "archive/qwen2.5-coder:32b"
    assert {r["study_verdict"] for r in runs.values()} == {"success", "failure"}
    attempts = list(csv.DictReader((report / "attempts.csv").read_text().splitlines()))
    by_file = {a["archive_file"]: a for a in attempts}
    program = archive / bad
    assert by_file[bad]["archived_sha256"] == hashlib.sha256(program.read_bytes()).hexdigest()
    assert by_file[bad]["study_verdict"] == "failure" and by_file[bad]["prompt_hash"] == ""

    data = json.loads((report / "results.json").read_text())
    for run in data["runs"]:
        attempt = run["attempts"][0]
        assert attempt["prompt"] is None and attempt["response"] is None and attempt["prompt_hash"] is None
        assert attempt["archived_file"] == run["params"]["archive_file"]
        assert attempt["code"] == (archive / attempt["archived_file"]).read_text()  # run as it is
    assert "Here is the solution" not in (report / "results.json").read_text()
    html = (report / "report.html").read_text()
    assert "no prompt was sent" in html and "Here is the solution" not in html
    assert "strict-rejected" in html and "A silent failure: the paper's own check" in html
    study_rows = json.loads((report / "study.json").read_text())["study"]
    assert {r["model_id"]: r["strict_rejected"] for r in study_rows}["archive-qwen2.5-coder-32b"] == 1
    assert "silent_failures" not in study_rows[0]
    header = (report / "study.csv").read_text().splitlines()[0]
    assert "strict_rejected" in header and "silent" not in header


def test_rf_lists_the_rejected_programs_and_errors_stay_failures(toy_project, pytester):
    archive = _archive(toy_project)
    result = pytester.runpytest("cases", "--autopilot-rescore", str(archive), "-p", "no:xdist",
                                "--autopilot-run-id", "listed", "-rf")
    assert result.parseoutcomes() == {"passed": 2, "failed": 2}  # asked for: pytest's own failures
    assert result.stdout.str().count("FAILED cases/toy/answer.yaml::answer[archive-") == 2

    # a program the harness cannot judge (its oracle crashes) is an error: still a listed failure
    (toy_project / "conftest.py").write_text((toy_project / "conftest.py").read_text().replace(
        "def toy_answer(ctx):", "def toy_answer(ctx):\n    raise RuntimeError('oracle bug')\n\ndef _unused(ctx):"))
    result = pytester.runpytest("cases", "--autopilot-rescore", str(archive), "-p", "no:xdist",
                                "--autopilot-run-id", "errors")
    assert result.parseoutcomes() == {"failed": 4}
    assert "FAILED" in result.stdout.str() and "oracle toy_answer failed" in result.stdout.str()
