"""``pytest-autopilot cassettes --stale`` names exactly the cassettes a prompt edit invalidates,
without asking a model or running code (issue 24)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from pytest_autopilot.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _project(tmp_path: Path) -> Path:
    """The shipped DP cases with their prompts and recorded cassettes, in a project of their own."""
    shutil.copytree(ROOT / "cases/dp", tmp_path / "cases/dp")
    shutil.copytree(ROOT / "prompts/dp", tmp_path / "prompts/dp")
    shutil.copytree(ROOT / "cassettes/dp", tmp_path / "cassettes/dp")
    (tmp_path / "pytest.ini").write_text("[pytest]\nautopilot_cases_dir = cases\n")
    return tmp_path


def _stale(project: Path, monkeypatch, capsys) -> tuple[int, list[str]]:
    monkeypatch.chdir(project)
    code = main(["cassettes", "--stale"])
    return code, capsys.readouterr().out.splitlines()


def test_a_prompt_edit_names_exactly_its_cassettes(tmp_path, monkeypatch, capsys):
    project = _project(tmp_path)
    recorded = sorted(str(p.relative_to(project)) for p in (project / "cassettes/dp").rglob("*.yaml"))
    code, lines = _stale(project, monkeypatch, capsys)
    assert code == 0 and lines == [f"{len(recorded)} cassette(s) compared with the first prompt their case "
                                   "renders now: none stale"]

    template = project / "prompts/dp/clean_split.j2"
    template.write_text(template.read_text().replace("\n", "\nKeep the code short.\n", 1))
    code, lines = _stale(project, monkeypatch, capsys)
    expected = [c for c in recorded if c.startswith("cassettes/dp/clean_split/")]
    assert code == 1
    assert sorted(line.split(": stale: ")[0] for line in lines[:-1]) == expected  # every clean_split cassette, no other
    assert all("differs from line 2 on (now: 'Keep the code short." in line for line in lines[:-1]), lines[0]
    assert lines[-1].startswith(f"{len(recorded)} cassette(s) compared") and f"{len(expected)} stale in 1 case(s)" in lines[-1]


def test_a_case_that_does_not_render_is_named(tmp_path, monkeypatch, capsys):
    project = _project(tmp_path)
    template = project / "prompts/dp/plan.j2"
    template.write_text(template.read_text() + "{{ not_in_the_context }}\n")
    code, lines = _stale(project, monkeypatch, capsys)
    assert code == 1
    assert lines[0] == ("cases/dp/fruit_pipeline.yaml: field steps.plan.prompt: template dp/plan.j2 uses "
                        "{{ not_in_the_context }}, which the case's context does not give; add it to context or fix the template")
    assert "could not be rendered" in lines[-1]


def test_it_imports_neither_litellm_nor_the_sandbox(tmp_path):
    project = _project(tmp_path)
    code = ("import sys; from pytest_autopilot.cli import main; code = main(['cassettes', '--stale']); "
            "print(code, sorted(m for m in ('litellm', 'pytest_autopilot.executors.sandbox') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.splitlines()[-1] == "0 []", out.stdout + out.stderr
