"""Opt-in: the plugin claims case files only where the ini key ``autopilot_cases_dir`` is set;
elsewhere it imports nothing heavy, registers no markers and refuses its own flags and ini keys
with one line. Case paths on the command line work from anywhere inside an opted-in project.
(The startup cost is printed by tests/bench/test_bench_startup.py.)"""

from __future__ import annotations

import json

import pytest

from pytest_autopilot.llm.profiles import STANDIN_MODEL
from pytest_autopilot.settings import BY_NAME, DEFAULT_LLM_TIMEOUT_S, LOCAL_LLM_TIMEOUT_S

TOY_ITEM = "cases/toy/answer.yaml::answer[scripted-standin-r01]"
HEAVY = ("pydantic", "yaml", "jinja2", "litellm", "vcr", "pandas", "numpy")
# records, at session end, which of our modules and which heavy ones the process imported
MODULES_PROBE = """
import json, sys
def pytest_sessionfinish(session):
    ours = sorted(m for m in sys.modules if m.startswith("pytest_autopilot"))
    heavy = sorted(m for m in {heavy!r} if m in sys.modules)
    open("modules.json", "w").write(json.dumps({{"ours": ours, "heavy": heavy}}))
""".format(heavy=HEAVY)


@pytest.fixture
def unrelated(pytester):
    """A project that knows nothing of autopilot but has a cases/ folder of YAML data."""
    pytester.makefile(".yaml", **{"cases/x": "rows: [1, 2, 3]\n", "cases/sub/data": "name: not a case\n"})
    pytester.makepyfile(test_trivial="def test_one():\n    assert 1 + 1 == 2\n")
    return pytester


def _modules(pytester, *args) -> dict:
    pytester.makeconftest(MODULES_PROBE)
    result = pytester.runpytest_subprocess("-p", "no:xdist", *args)
    result.assert_outcomes(passed=1)
    return json.loads((pytester.path / "modules.json").read_text())


def test_an_unrelated_project_with_cases_yaml_is_untouched(unrelated):
    result = unrelated.runpytest_subprocess("-p", "no:xdist", "-W", "error")
    result.assert_outcomes(passed=1, warnings=0)
    assert "warning" not in result.stdout.str().lower() and not result.stderr.str().strip()
    assert not (unrelated.path / "reports").exists()
    assert "@pytest.mark.autopilot" not in unrelated.runpytest_subprocess("--markers").stdout.str()


def test_without_opt_in_the_plugin_imports_nothing_heavy(unrelated):
    loaded = _modules(unrelated)
    without_plugin = _modules(unrelated, "-p", "no:autopilot")
    assert loaded["ours"] == ["pytest_autopilot", "pytest_autopilot.core", "pytest_autopilot.core.records",
                              "pytest_autopilot.hookspec", "pytest_autopilot.plugin", "pytest_autopilot.settings"]
    assert set(loaded["heavy"]) <= set(without_plugin["heavy"])  # what other plugins import is theirs


@pytest.mark.parametrize("args, given", [
    (["--autopilot-runs", "2"], "--autopilot-runs"),
    (["--autopilot-self-test"], "--autopilot-self-test"),
    (["-o", "autopilot_runs=2"], "ini key autopilot_runs"),
])
def test_autopilot_settings_without_opt_in_are_one_usage_error(unrelated, args, given):
    result = unrelated.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    (line,) = [line for line in result.stderr.lines if line.strip()]
    assert line.startswith(f"ERROR: {given} is set, but this project has not opted in to pytest-autopilot")
    assert "autopilot_cases_dir = cases" in line and "pytest-autopilot init" in line


def test_the_usage_error_names_the_projects_config_file_and_section(unrelated):
    unrelated.makepyprojecttoml('[tool.pytest.ini_options]\nautopilot_reports_dir = "out"\n')
    result = unrelated.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"to [tool.pytest.ini_options] of {unrelated.path / 'pyproject.toml'}," in result.stderr.str()


@pytest.mark.parametrize("name, text", [
    ("pytest.ini", "[pytest]\nautopilot_cases_dir = cases\n"),
    ("pyproject.toml", '[tool.pytest.ini_options]\nautopilot_cases_dir = "cases"\n'),
    ("tox.ini", "[pytest]\nautopilot_cases_dir = cases\n"),
    ("setup.cfg", "[tool:pytest]\nautopilot_cases_dir = cases\n"),
])
def test_a_project_with_the_ini_key_collects_its_cases_only(toy_project, pytester, name, text):
    (toy_project / "tox.ini").unlink()
    (toy_project / name).write_text(text)
    pytester.makefile(".yaml", **{"data/other": "stage: DP\n"})  # outside the cases folder: never claimed
    result = pytester.runpytest("--co", "-q")
    assert [line for line in result.stdout.lines if "::" in line] == [TOY_ITEM]


def test_another_cases_folder_and_an_o_override_opt_in_too(toy_project, pytester):
    (toy_project / "cases").rename(toy_project / "tasks")
    (toy_project / "tox.ini").write_text("[pytest]\nautopilot_cases_dir = tasks\n")
    assert "tasks/toy/answer.yaml::answer[scripted-standin-r01]" in pytester.runpytest("--co", "-q").stdout.lines
    (toy_project / "tox.ini").unlink()  # no ini file: relative to where pytest was started
    result = pytester.runpytest("-o", "autopilot_cases_dir=tasks", "tasks/toy", "--co", "-q")
    assert "tasks/toy/answer.yaml::answer[scripted-standin-r01]" in result.stdout.lines


@pytest.mark.parametrize("cwd, arg", [
    ("cases/toy", "."),  # pytest . from inside a cases subfolder
    ("cases/toy", "answer.yaml"),
    ("prompts", "../cases/toy/answer.yaml"),  # a case file from a sibling folder
    ("prompts", "../cases/toy/"),  # a subfolder
    ("..", "{project}/cases/toy/answer.yaml"),  # from above the project
])
def test_case_paths_work_from_anywhere_inside_the_project(toy_project, pytester, monkeypatch, cwd, arg):
    monkeypatch.chdir(toy_project / cwd)
    result = pytester.runpytest(arg.format(project=toy_project.name), "--co", "-q")
    assert [line for line in result.stdout.lines if "::" in line] == [TOY_ITEM], result.stdout.str()


def test_folders_follow_the_ini_file_when_rootdir_moves(toy_project, pytester):
    result = pytester.runpytest("--rootdir", str(toy_project / "cases"), "cases", "--co", "-q")
    assert "toy/answer.yaml::answer[scripted-standin-r01]" in result.stdout.lines, result.stdout.str()


def test_help_texts_quote_the_defaults_the_code_uses():
    assert f"(default: {STANDIN_MODEL}," in BY_NAME["llm"].help
    assert f"(default {DEFAULT_LLM_TIMEOUT_S:g}; {LOCAL_LLM_TIMEOUT_S:g} for local/" in BY_NAME["llm_timeout"].help
