"""Work a session does once: the toolchain check of a run, the load of a case (collection's is
reused by provenance), and a report's tables (for its files and the terminal alike)."""

from __future__ import annotations

import importlib
import json

import pytest

RUN = ("cases", "-p", "no:xdist", "--record-mode", "once", "--autopilot-runs", "2")


def _module(name: str):
    """The module an in-process run will import (an earlier run's may linger as a package attribute)."""
    return importlib.import_module(f"pytest_autopilot.{name}")


def _counting(monkeypatch, owner, name: str) -> list:
    calls, original = [], getattr(owner, name)

    def counted(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


@pytest.mark.parametrize("policy", ["fail", "skip"])
def test_the_toolchain_check_runs_once_per_run(toy_project, pytester, monkeypatch, policy):
    calls = _counting(monkeypatch, _module("runner"), "check_requirements")
    result = pytester.runpytest(*RUN, "--autopilot-missing-toolchain", policy)
    result.assert_outcomes(passed=2)
    assert len(calls) == 2


def test_provenance_hashes_the_collected_case_without_loading_it_again(toy_project, pytester, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("provenance loaded a collected case again")

    monkeypatch.setattr(_module("results.provenance"), "load_case", refuse)
    pytester.runpytest(*RUN, "--autopilot-run-id", "once").assert_outcomes(passed=2)
    hashes = json.loads((toy_project / "reports/once/results.json").read_text())["provenance"]["case_hashes"]
    assert "toy/answer.j2" in hashes["cases/toy/answer.yaml"]  # hashed, not "unavailable: ..."


def test_the_report_tables_are_computed_once_for_its_files_and_the_terminal(toy_project, pytester, monkeypatch):
    made = _counting(monkeypatch, _module("results.report"), "report_tables")
    grouped = _counting(monkeypatch, _module("results.stats"), "group_stats")  # the files, the terminal, the HTML

    def refuse(*args, **kwargs):
        raise AssertionError("the terminal summary computed the group statistics again")

    monkeypatch.setattr(_module("results.stats"), "summarise", refuse)
    result = pytester.runpytest(*RUN, "--autopilot-run-id", "tables")
    result.assert_outcomes(passed=2)
    assert len(made) == 1 and len(grouped) == 1
    result.stdout.fnmatch_lines(["*autopilot summary*", "*answer*scripted-standin*", "per tier*"])
    assert (toy_project / "reports/tables/summary.csv").is_file() and (toy_project / "reports/tables/report.html").is_file()
