"""The ``pytest-autopilot`` command line (cli.main) and the argparse options shared with the pytest flags."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from pytest_autopilot import cli, settings
from pytest_autopilot.core.records import Attempt, Category, Check, ExecResult, RunRecord, RunStatus, Verdict
from pytest_autopilot.results import report


def _attempt(number: int, ok: bool, code: str = "print(1)") -> Attempt:
    category = None if ok else Category.RUNTIME_ERROR
    return Attempt(
        step="code", item=None, number=number, prompt_hash="h", prompt="the prompt", code=code, code_lang="python",
        execution=ExecResult(returncode=0 if ok else 1, stdout="", stderr="boom", duration_s=0.1),
        strict=Verdict.from_checks("strict", [Check("out", ok, "" if ok else "missing out.csv")], category),
        legacy=Verdict.from_checks("legacy", [Check("exit0", ok)]),
        category=category, total_tokens=10, cost_usd=0.001, latency_s=0.5,
    )


def _records(outcomes: list[bool], model: str = "m", case: str = "fir") -> list[RunRecord]:
    return [RunRecord(
        nodeid=f"cases/{case}.yaml::{case}[{model}-r{rep:02d}]", case=case, stage="DP", model_id=model,
        model=f"x/{model}", params={}, repetition=rep, status=RunStatus.SUCCESS if ok else RunStatus.FAILURE,
        strict_success=ok, legacy_success=ok,
        attempts=[_attempt(1, ok, code="print('\x1b[31mred\x1b[0m')")] if ok else [_attempt(1, False), _attempt(2, False)],
    ) for rep, ok in enumerate(outcomes, start=1)]


def _write(root: Path, name: str, records: list[RunRecord]) -> Path:
    report.write_report(root / name, records, {"run_id": name})
    return root / name


def test_report_regenerates_derived_files_and_html(tmp_path, capsys):
    run = _write(tmp_path, "run-a", _records([True, False, True]))
    before = (run / "results.json").read_bytes()
    (run / "summary.csv").unlink()
    base = _write(tmp_path, "base", _records([True] * 4, model="paper-m"))
    assert cli.main(["report", str(run), "--html", "--baseline", str(base)]) == 0
    out = capsys.readouterr().out
    assert "fir" in out and "wrote" in out
    for name in ("summary.csv", "summary.json", "runs.csv", "attempts.csv", "stats.json", "report.html"):
        assert (run / name).is_file(), name
    assert (run / "results.json").read_bytes() == before  # never rewritten
    stats_json = json.loads((run / "stats.json").read_text())
    assert stats_json["groups"][0]["successes"] == 2 and stats_json["groups"][0]["runs"] == 3
    assert "table-side-by-side" in (run / "report.html").read_text()


def test_run_ids_resolve_under_the_reports_dir(tmp_path, monkeypatch, capsys):
    reports = tmp_path / "out" / "reps"
    _write(reports, "r1", _records([True]))
    monkeypatch.chdir(tmp_path)
    # the shared option, with the pytest flag's spelling
    assert cli.main(["show", "r1", "--autopilot-reports-dir", str(reports)]) == 0
    assert "fir" in capsys.readouterr().out
    assert cli.main(["show", "r1"]) == 2  # default "reports" has no r1
    assert "no results.json" in capsys.readouterr().err
    # the ini key, relative to the ini file's folder (as the plugin resolves it from rootdir)
    (tmp_path / "pytest.ini").write_text("[pytest]\nautopilot_reports_dir = out/reps\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    monkeypatch.chdir(sub)
    assert cli.main(["show", "r1"]) == 0
    # pyproject.toml with [tool.pytest.ini_options], when it is the nearest config file
    (sub / "pyproject.toml").write_text('[tool.pytest.ini_options]\nautopilot_reports_dir = "../out/reps"\n')
    assert cli.main(["show", "r1"]) == 0
    (sub / "pyproject.toml").write_text('[tool.pytest.ini_options]\nautopilot_reports_dir = "nowhere"\n')
    assert cli.main(["show", "r1"]) == 2


def test_compare_exit_codes_and_text(tmp_path, capsys):
    a = _write(tmp_path, "a", _records([True] * 8 + [False] * 2))
    b = _write(tmp_path, "b", _records([False] * 6 + [True] * 2 + [False] * 2))
    assert cli.main(["compare", str(a), str(b)]) == 0  # reported, not failing, unless asked
    out = capsys.readouterr().out
    assert "REGRESSION" in out and "0.03125" in out and "McNemar 6:0 of 10 pairs" in out
    assert cli.main(["compare", str(a), str(b), "--fail-on-regression"]) == 1
    capsys.readouterr()
    assert cli.main(["compare", str(a), str(b), "--fail-on-regression", "--alpha", "0.01"]) == 0
    capsys.readouterr()
    assert cli.main(["compare", str(b), str(a), "--fail-on-regression"]) == 0  # an improvement
    capsys.readouterr()
    assert cli.main(["compare", str(a), str(b), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["regressions"] == ["fir × m"] and data["groups"][0]["p_value"] == pytest.approx(0.03125)
    assert cli.main(["compare", str(a), str(b), "--by", "colour"]) == 2
    other = _write(tmp_path, "other", _records([True], case="elsewhere"))
    capsys.readouterr()
    assert cli.main(["compare", str(a), str(other), "--fail-on-regression"]) == 2  # nothing compared
    assert "no group present in both" in capsys.readouterr().err


def test_compare_unpaired_and_two_models(tmp_path, capsys):
    a = _write(tmp_path, "a", _records([True] * 10))
    b = _write(tmp_path, "b", _records([True] * 4 + [False] * 8))
    assert cli.main(["compare", str(a), str(b), "--fail-on-regression"]) == 1
    out = capsys.readouterr().out
    assert "Fisher" in out and "different repetition counts (10 vs 12)" in out
    both = _write(tmp_path, "both", _records([True] * 6, model="gpt") + _records([False] * 6, model="phi"))
    assert cli.main(["compare", str(both), str(both), "--a-model", "gpt", "--b-model", "phi",
                     "--fail-on-regression"]) == 1
    assert "McNemar 6:0 of 6 pairs" in capsys.readouterr().out


def test_show_summary_and_one_run(tmp_path, capsys):
    run = _write(tmp_path, "run", _records([True, False]) + _records([True], case="other"))
    assert cli.main(["show", str(run)]) == 0
    out = capsys.readouterr().out
    assert "fir" in out and "other" in out and "pass@k" in out and "success by attempt" in out
    assert cli.main(["show", str(run), "--case", "other"]) == 0
    out = capsys.readouterr().out
    assert "other" in out and "fir × m" not in out
    assert cli.main(["show", str(run), "--run", "fir[m-r02]"]) == 0
    out = capsys.readouterr().out
    assert "#1 code: runtime_error" in out and "#2 code: runtime_error" in out and "missing out.csv" in out
    assert cli.main(["show", str(run), "--run", "fir[m-r01]", "--full"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[31mred" in out and "the prompt" in out  # terminal escapes neutralised
    assert cli.main(["show", str(run), "--run", "r01"]) == 2  # ambiguous: two runs match
    assert "2 runs match" in capsys.readouterr().err
    assert cli.main(["show", str(run), "--case", "nope"]) == 2


def test_baseline_import_command_small_files(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    (src / "MC_MCU_data_by_run.csv").write_text(
        "\ufeffnum_run,name,trace_id,latency,total_tokens,total_cost,status,batch_id,tags,prompt_tokens,"
        "completion_tokens,prompt_cost,completion_cost\n"
        "0,a,t,5.0,600,0.006,success,b,x,300,300,0.001,0.005\n"
        "1,b,t,7.0,800,0.008,error,b,x,400,400,0.002,0.006\n", encoding="utf-8")
    out = tmp_path / "baseline"
    assert cli.main(["baseline-import", str(src), str(out), "--html"]) == 0
    records, prov, complete = report.load_results(out / "results.json")
    assert len(records) == 2 and prov["baseline"]["source"] == "paper" and complete
    assert (out / "report.html").is_file() and (out / "stats.json").is_file()
    assert cli.main(["show", str(out)]) == 0
    assert "paper baseline" in capsys.readouterr().out
    assert cli.main(["baseline-import", str(tmp_path / "missing"), str(out)]) == 2


def test_shared_options_match_the_pytest_flags():
    parser = argparse.ArgumentParser()
    settings.add_argparse_options(parser, ["reports_dir", "runs", "record_mode", "llm", "self_test"])
    flags = {a.option_strings[0]: a for a in parser._actions if a.option_strings and a.dest != "help"}
    for name in ("reports_dir", "runs", "record_mode", "llm", "self_test"):
        opt = settings.BY_NAME[name]
        action = flags[opt.flag]
        assert action.dest == "autopilot_" + name and action.help == opt.help and action.default is None
    assert flags["--autopilot-record-mode"].choices == settings.RECORD_MODES
    args = parser.parse_args(["--autopilot-runs", "3", "--autopilot-llm", "a", "--autopilot-llm", "b",
                              "--autopilot-self-test"])
    assert args.autopilot_runs == 3 and args.autopilot_llm == ["a", "b"] and args.autopilot_self_test is True
    with pytest.raises(SystemExit):
        parser.parse_args(["--autopilot-record-mode", "sometimes"])

    # every CLI subcommand that reads reports carries the shared option
    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for command in ("report", "compare", "show"):
        opts = {o for a in sub.choices[command]._actions for o in a.option_strings}
        assert "--autopilot-reports-dir" in opts, command


# --------------------------------------------------------------------------------------------
# the reports folder from the config file pytest itself would use


def _resolved(cwd: Path) -> Path:
    return cli.reports_dir(argparse.Namespace(autopilot_reports_dir=None), cwd)


@pytest.mark.parametrize("name, text", [
    ("pytest.toml", '[pytest]\nautopilot_reports_dir = "out/reps"\n'),
    (".pytest.toml", '[pytest]\nautopilot_reports_dir = "out/reps"\n'),
    ("pyproject.toml", '[tool.pytest.ini_options]\nautopilot_reports_dir = "out/reps"\n'),
    ("pyproject.toml", '[tool.pytest]\nautopilot_reports_dir = "out/reps"\n'),
    ("pytest.ini", "[pytest]\nautopilot_reports_dir = out/reps\n"),
    ("tox.ini", "[pytest]\nautopilot_reports_dir = out/reps\n"),
    ("setup.cfg", "[tool:pytest]\nautopilot_reports_dir = out/reps\n"),
])
def test_reports_dir_from_every_pytest_config_format(tmp_path, monkeypatch, capsys, name, text):
    project = tmp_path / "project"
    _write(project / "out" / "reps", "r1", _records([True]))
    (project / name).write_text(text)
    sub = project / "tests" / "deep"
    sub.mkdir(parents=True)
    assert _resolved(sub) == project / "out" / "reps"  # relative to the rootdir, found from below
    monkeypatch.chdir(sub)
    assert cli.main(["show", "r1"]) == 0
    assert "fir" in capsys.readouterr().out


def test_reports_dir_follows_pytests_precedence(tmp_path, monkeypatch, capsys):
    (tmp_path / "pytest.ini").write_text("[pytest]\nautopilot_reports_dir = from-ini\n")
    (tmp_path / "pytest.toml").write_text('[pytest]\nautopilot_reports_dir = "from-toml"\n')
    assert _resolved(tmp_path) == tmp_path / "from-toml"  # pytest.toml comes first in a folder
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "pyproject.toml").write_text('[project]\nname = "x"\n')  # no pytest table: not a config file
    assert _resolved(sub) == tmp_path / "from-toml"
    (sub / "tox.ini").write_text("[pytest]\naddopts = -q\n")  # the nearest config file decides, key or not
    assert _resolved(sub) == sub / "reports"
    (sub / "pyproject.toml").write_text("[tool.pytest.ini_options\n")  # not valid TOML: a usage error
    with pytest.raises(ValueError, match="pytest configuration"):
        _resolved(sub)
    _write(tmp_path / "reps", "r1", _records([True]))
    monkeypatch.chdir(sub)
    assert cli.main(["show", "r1"]) == 2
    err = capsys.readouterr().err
    assert "pytest configuration" in err and "pyproject.toml" in err
    assert cli.main(["show", "r1", "--autopilot-reports-dir", str(tmp_path / "reps")]) == 0  # the flag reads no config


def test_reports_dir_without_a_config_file_is_under_pytests_rootdir(tmp_path):
    sub = tmp_path / "pkg" / "inner"
    sub.mkdir(parents=True)
    assert _resolved(sub) == sub / "reports"  # no config file, no setup.py: the invocation folder
    (tmp_path / "setup.py").write_text("")
    assert _resolved(sub) == tmp_path / "reports"  # pytest's rootdir: the folder holding setup.py


# --------------------------------------------------------------------------------------------
# one flag builder for the pytest flags and the CLI


class _RecordingParser:
    """Stands in for pytest's parser: records what add_options asks for."""

    def __init__(self):
        self.flags: dict[str, dict] = {}
        self.inis: dict[str, dict] = {}

    def getgroup(self, name, description=""):
        return self

    def addoption(self, flag, **kwargs):
        self.flags[flag] = kwargs

    def addini(self, name, help, **kwargs):
        self.inis[name] = kwargs


def test_pytest_flags_and_cli_flags_come_from_one_builder(monkeypatch):
    pytest_side = _RecordingParser()
    settings.add_options(pytest_side)
    argparse_side = argparse.ArgumentParser()
    settings.add_argparse_options(argparse_side, settings.BY_NAME)
    actions = {a.option_strings[0]: a for a in argparse_side._actions if a.option_strings and a.dest != "help"}
    for opt in settings.OPTIONS:
        kwargs = settings.flag_kwargs(opt)
        assert pytest_side.flags[opt.flag] == kwargs, opt.name
        action = actions[opt.flag]
        for key in ("dest", "default", "choices", "type", "metavar"):
            if key in kwargs:
                assert getattr(action, key) == kwargs[key], (opt.name, key)
    # both sides use the builder: a change there reaches the pytest flags and the CLI alike
    monkeypatch.setattr(settings, "flag_kwargs", lambda opt: {"dest": "x_" + opt.name, "help": "h", "default": 7})
    pytest_side = _RecordingParser()
    settings.add_options(pytest_side)
    assert pytest_side.flags["--autopilot-runs"] == {"dest": "x_runs", "help": "h", "default": 7}
    argparse_side = argparse.ArgumentParser()
    settings.add_argparse_options(argparse_side, ["runs"])
    assert argparse_side.parse_args([]).x_runs == 7
