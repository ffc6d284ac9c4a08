"""Difficulty tiers (issue 23): every shipped case declares ``tier``, the shipped suite has tier-1
sub-tasks for every stage that runs here, a tier is a marker (``-m tier1``), a case without the
field is tier 2, and a tier outside 1..3 is a one-line collection error."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import yaml

from pytest_autopilot.cases.spec import TIERS, tier_marker

ROOT = Path(__file__).parents[2]
TIER1_STAGES = ("DP", "MC", "ArdSG", "PyCPU-SG")  # the issue asks for at least 2 tier-1 cases of each


def _shipped() -> dict[str, dict]:
    files = sorted(p for p in (ROOT / "cases").rglob("*.yaml") if not {"assets", "solutions"} & set(p.parts))
    return {str(p.relative_to(ROOT)): yaml.safe_load(p.read_text()) for p in files}


def test_every_shipped_case_declares_its_tier():
    shipped = _shipped()
    undeclared = [path for path, raw in shipped.items() if "tier" not in raw]
    assert not undeclared, f"declare tier: 1 | 2 | 3 in {undeclared}"
    assert all(raw["tier"] in TIERS for raw in shipped.values())


def test_at_least_two_tier1_cases_per_stage():
    counts = Counter(raw["stage"] for raw in _shipped().values() if raw["tier"] == 1)
    assert all(counts[stage] >= 2 for stage in TIER1_STAGES), counts


def test_tier_is_a_marker_and_defaults_to_2(toy_project, pytester, write_file):
    case = (toy_project / "cases/toy/answer.yaml").read_text()
    write_file(toy_project, "cases/toy/easy.yaml", case.replace("stage: DP\n", "stage: DP\ntier: 1\n"))
    write_file(toy_project, "cases/toy/hard.yaml", case.replace("stage: DP\n", "stage: DP\ntier: 3\n"))

    def selected(marker: str) -> list[str]:
        result = pytester.runpytest("cases", "--co", "-q", "-m", marker)
        return sorted({line.split("::")[0] for line in result.stdout.lines if "::" in line})

    assert selected(tier_marker(1)) == ["cases/toy/easy.yaml"]
    assert selected("tier2") == ["cases/toy/answer.yaml"]  # no tier field: tier 2
    assert selected("tier3") == ["cases/toy/hard.yaml"]
    assert selected("tier1 or tier3") == ["cases/toy/easy.yaml", "cases/toy/hard.yaml"]
    markers = pytester.runpytest("--markers").stdout.str()
    assert "@pytest.mark.tier1: case of difficulty tier 1" in markers


def test_a_tier_outside_1_to_3_is_a_one_line_error(toy_project, pytester):
    path = toy_project / "cases/toy/answer.yaml"
    path.write_text(path.read_text().replace("stage: DP\n", "stage: DP\ntier: 4\n"))
    result = pytester.runpytest("cases", "--co", "-q")
    lines = [line for line in result.stdout.lines if "field tier" in line]
    assert lines and "cases/toy/answer.yaml" in lines[0] and "1, 2 or 3" in lines[0], result.stdout.str()[-2000:]


def test_a_tier3_case_is_one_a_careful_expert_needed_repairs_for():
    """Calibration (issue 23): every shipped tier-3 case has a human-baseline run whose cassette holds
    more answers than the case has steps (a repair); a case an expert passes at once is tier 2 (as
    ardsg/uno_digits_ram, pipeline/fruit_to_uno and pipeline/digits_to_uno are). A for_each step asks
    once per item: such a case would need its plan's item count here."""
    for path, raw in _shipped().items():
        if raw["tier"] != 3:
            continue
        folder = ROOT / "cassettes" / Path(path).relative_to("cases").with_suffix("")
        answers = [len(yaml.safe_load(c.read_text())["interactions"]) for c in folder.glob("human-*.yaml")]
        assert not any(step.get("for_each") for step in raw["steps"]), f"{path}: count a for_each step's items"
        assert answers and max(answers) > len(raw["steps"]), f"{path}: no human baseline that needed a repair: it is tier 2"
