"""Packaged default prompts: a project's prompts/ overrides them template by template."""

from __future__ import annotations

from pytest_autopilot.cases import defaults
from pytest_autopilot.cases.prompts import render


def test_shared_templates_fall_back_to_the_packaged_ones(tmp_path):
    assert defaults.prompt_path(tmp_path, "common/repair.j2") == defaults.PROMPTS / "common/repair.j2"
    text = render(tmp_path, "common/feedback.j2", {"attempt": 2, "error": "boom", "language": "Python"})
    assert "boom" in text


def test_a_project_template_wins_over_the_packaged_one_of_the_same_name(tmp_path):
    (tmp_path / "common").mkdir()
    (tmp_path / "common/repair.j2").write_text("MINE {{ error }}")
    assert render(tmp_path, "common/repair.j2", {"error": "x"}) == "MINE x"
    assert defaults.prompt_path(tmp_path, "common/feedback.j2") == defaults.PROMPTS / "common/feedback.j2"
