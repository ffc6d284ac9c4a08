"""Every error is a recorded result with its one-line message, and cassettes are tamper-evident,
through real pytest runs: crafted cassettes and case files, -x / --maxfail, leftover and
killed workers' .partial cassettes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from child_session import run_session

from pytest_autopilot.core.util import sha256_file
from pytest_autopilot.llm.cassette_manifest import MANIFEST_NAME

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CASSETTES = "cassettes/toy/answer"
FIX = "re-record it with --record-mode=all, or delete it"


def _results(root: Path, run_id: str) -> dict:
    return json.loads((root / f"reports/{run_id}/results.json").read_text())


def _by_rep(data: dict) -> dict[int, dict]:
    return {r["repetition"]: r for r in data["runs"]}


def _run(pytester, *args):
    return pytester.runpytest("cases", "-p", "no:xdist", *args)


def _record(pytester, runs: int) -> Path:
    _run(pytester, "--autopilot-runs", str(runs), "--record-mode", "once", "--autopilot-run-id", "rec")
    return pytester.path / CASSETTES


def _edit_first_response(path: Path, edit) -> None:
    data = yaml.safe_load(path.read_text())
    body = data["interactions"][0]["response"]["body"]
    body["string"] = edit(body["string"])
    path.write_text(yaml.safe_dump(data))


def test_recording_writes_the_manifest(toy_project, pytester):
    folder = _record(pytester, 2)
    lines = (folder / MANIFEST_NAME).read_text().splitlines()
    assert lines == [f"{sha256_file(folder / name)}  {name}"
                     for name in ("scripted-standin-r01.yaml", "scripted-standin-r02.yaml")]


def test_crafted_cassettes_are_errors_with_one_line_each(toy_project, pytester):
    folder = _record(pytester, 6)
    cassette = {n: folder / f"scripted-standin-r0{n}.yaml" for n in range(1, 7)}
    text = cassette[1].read_text()
    cassette[1].write_text(text[: text.index("body: '") + 40])  # truncated inside a quoted string
    cassette[2].write_text("interactions: this: is not YAML\n")
    cassette[3].write_text('!!python/object/apply:os.system ["touch pwned"]\n')  # unsafe tag
    _edit_first_response(cassette[4], lambda body: "<html>502 Bad Gateway</html>")  # not JSON
    _edit_first_response(cassette[5], lambda body: body.replace("Here is", "Here was"))  # edited, still JSON
    manifest = folder / MANIFEST_NAME
    manifest.write_text("".join(line + "\n" for line in manifest.read_text().splitlines()
                                if not line.endswith("r06.yaml")))  # r06: no manifest entry
    pytester.makeini("[pytest]\nautopilot_cases_dir = cases\nautopilot_cassette_check = error\n")

    result = _run(pytester, "--autopilot-runs", "6", "--record-mode", "none", "--autopilot-run-id", "replay")
    result.assert_outcomes(failed=6)
    out = result.stdout.str()
    expected = {1: "not valid YAML", 2: "not valid YAML", 3: "refused YAML tag",
                4: "interaction 1: the response body is not JSON", 5: "content differs from its sha256 in "
                f"{CASSETTES}/{MANIFEST_NAME}", 6: f"no sha256 entry in {CASSETTES}/{MANIFEST_NAME}"}
    runs = _by_rep(_results(pytester.path, "replay"))
    for rep, phrase in expected.items():
        error = runs[rep]["error"]
        assert runs[rep]["status"] == "error", (rep, error)
        assert error.startswith(f"cassette_invalid: {CASSETTES}/scripted-standin-r0{rep}.yaml:"), (rep, error)
        assert phrase in error and FIX in error and "\n" not in error, (rep, error)
        assert error in out  # the run's failure line is the recorded message
    assert "Traceback" not in out and "prompt changed since recording" not in out and "crashed" not in out
    assert not (pytester.path / "pwned").exists()
    # finished runs: resuming does not repeat them
    resumed = _run(pytester, "--autopilot-runs", "6", "--record-mode", "none", "--autopilot-resume", "replay")
    assert "6 deselected" in resumed.stdout.str()


def test_a_cassette_check_warns_or_stops_and_the_provenance_lists_replayed_cassettes(toy_project, pytester,
                                                                                   monkeypatch):
    folder = _record(pytester, 2)
    _edit_first_response(folder / "scripted-standin-r01.yaml", lambda body: body.replace("Here is", "Here was"))
    monkeypatch.delenv("CI", raising=False)
    warned = _run(pytester, "--autopilot-runs", "2", "--record-mode", "none", "--autopilot-run-id", "warn")
    warned.assert_outcomes(passed=2)  # warn (the default off CI): the runs go on
    data = _results(pytester.path, "warn")
    warning = _by_rep(data)[1]["warnings"]
    assert len(warning) == 1 and warning[0].startswith(f"cassette_invalid: {CASSETTES}/scripted-standin-r01.yaml: "
                                                       "content differs from its sha256")
    assert _by_rep(data)[2]["warnings"] == []
    assert warned.stdout.str().count(warning[0]) == 1  # printed once
    assert data["provenance"]["replayed_cassettes"] == {
        f"{CASSETTES}/scripted-standin-r0{n}.yaml": sha256_file(folder / f"scripted-standin-r0{n}.yaml") for n in (1, 2)}

    monkeypatch.setenv("CI", "true")  # on CI the default is error
    stopped = _run(pytester, "--autopilot-runs", "2", "--record-mode", "none", "--autopilot-run-id", "ci")
    stopped.assert_outcomes(passed=1, failed=1)
    assert _by_rep(_results(pytester.path, "ci"))[1]["error"].startswith("cassette_invalid: ")
    # the fix the message names: re-recording replaces the cassette and updates the manifest
    _run(pytester, "-k", "r01", "--autopilot-runs", "2", "--record-mode", "all", "--autopilot-run-id", "rerec")
    again = _run(pytester, "--autopilot-runs", "2", "--record-mode", "none", "--autopilot-run-id", "again")
    again.assert_outcomes(passed=2)


BAD_CASES = {
    "broken_syntax.yaml": (lambda c: c.replace("stage: DP\n", "stage: DP\n  oops: [\n"),
                           "cases/toy/broken_syntax.yaml: line 2 is not valid YAML"),
    "no_description.yaml": (lambda c: c.replace("description: write the answer\n", ""),
                            "cases/toy/no_description.yaml: field description: Field required"),
    "unknown_oracle.yaml": (lambda c: c.replace("name: toy_answer", "name: toy_anwser"),
                            "cases/toy/unknown_oracle.yaml: field steps.code.oracle.name: unknown oracle 'toy_anwser'; "
                            "known: ardsg_app_spec"),
    "unknown_param.yaml": (lambda c: c.replace('{name: toy_answer, params: {expected: "42"}}',
                                               '{name: output_files, params: {files: {out.txt: {}}, colour: blue}}'),
                           "cases/toy/unknown_param.yaml: field steps.code.oracle.params.colour: not a param of oracle "
                           "output_files; remove it or check its spelling (known: files)"),
}


@pytest.mark.parametrize("workers", [["-p", "no:xdist"], ["-n", "2"]], ids=["no-xdist", "xdist"])
def test_bad_case_files_are_one_line_each_and_the_others_run(toy_project, pytester, workers):
    good = (toy_project / "cases/toy/answer.yaml").read_text()
    for name, (mutate, _line) in BAD_CASES.items():
        (toy_project / "cases/toy" / name).write_text(mutate(good))
    result = run_session(pytester, "cases", *workers, "--record-mode", "once", "--autopilot-run-id", "bad")
    assert result.ret == 6  # set-up trouble: case files that could not be loaded (not interrupted)
    result.assert_outcomes(passed=1, errors=len(BAD_CASES))  # the good case still ran
    out = result.stdout.str()
    for _mutate, line in BAD_CASES.values():
        assert line in out
    assert "Traceback" not in out and "pydantic" not in out
    data = _results(toy_project, "bad")
    assert data["complete"] is False and data["incomplete_reason"] == "4 case file(s) could not be loaded (see not_run)"
    assert [r["nodeid"] for r in data["runs"]] == ["cases/toy/answer.yaml::answer[scripted-standin-r01]"]
    not_run = {entry["case"]: entry["error"] for entry in data["not_run"]}
    assert sorted(not_run) == sorted(f"cases/toy/{name}" for name in BAD_CASES)
    for name, (_mutate, line) in BAD_CASES.items():
        assert not_run[f"cases/toy/{name}"].startswith(line) and "\n" not in not_run[f"cases/toy/{name}"]
    assert str(toy_project) not in json.dumps(data["not_run"])  # paths relative to the project


@pytest.mark.parametrize("stop, reason", [
    (["-x", "-p", "no:xdist"], "stopped after the first failure (-x)"),
    (["-x", "-n", "2"], "stopped after the first failure (-x)"),
    (["--maxfail", "2", "-p", "no:xdist"], "stopped after 2 failures (--maxfail=2)"),
])
def test_a_stop_at_the_failure_limit_is_an_incomplete_report(toy_project, pytester, stop, reason):
    # the stand-in's repetitions 3 and 6 fail; 7 runs leave one unrun after the second failure
    result = run_session(pytester, "cases", "--autopilot-runs", "7", "--record-mode", "once", "--autopilot-run-id",
                         "stop", *stop)
    data = _results(toy_project, "stop")
    assert data["complete"] is False and data["incomplete_reason"] == reason
    assert len(data["runs"]) < 7
    assert f"INCOMPLETE: {reason}" in result.stdout.str()


def test_a_failure_limit_reached_by_the_last_run_leaves_the_report_complete(toy_project, pytester):
    _run(pytester, "--autopilot-runs", "3", "--record-mode", "once", "--autopilot-run-id", "last", "-x")
    data = _results(toy_project, "last")
    assert data["complete"] is True and data["incomplete_reason"] is None and len(data["runs"]) == 3


def test_leftover_partial_cassettes_are_removed_at_session_end(toy_project, pytester):
    folder = _record(pytester, 1)
    legacy = folder / "scripted-standin-r01.yaml.partial"  # the old naming
    dead = folder / "scripted-standin-r02.yaml.999999999.partial"  # a writer that is gone
    live = folder / f"scripted-standin-r03.yaml.{os.getpid()}.partial"  # another live session's
    for path in (legacy, dead, live):
        path.write_text("half a cassette")
    # a child process: the "live" writer above is this process, which must not be the session's own
    pytester.runpytest_subprocess("cases", "-p", "no:xdist", "--record-mode", "none")
    assert not legacy.exists() and not dead.exists() and live.exists()


def test_a_killed_worker_leaves_a_crashed_entry_the_other_results_and_no_partial_cassette(toy_project, pytester,
                                                                                          monkeypatch):
    """The one xdist worker-death scenario: the run on the dying worker is recorded as crashed, the
    other workers' runs are kept, its half-written cassette is removed and the old one kept."""
    folder = _record(pytester, 2)
    before = (folder / "scripted-standin-r02.yaml").read_text()
    case = toy_project / "cases/toy/answer.yaml"
    case.write_text(case.read_text().replace("  - {code: [reference]}\n", "  - {code: [bad_die]}\n"))
    monkeypatch.setenv("AUTOPILOT_TOY_DIE", "1")  # the oracle kills its worker while r02 is being re-recorded
    result = pytester.runpytest_subprocess("cases", "-n", "2", "--autopilot-runs", "3", "--record-mode", "all",
                                           "--autopilot-run-id", "killed")
    assert "crashed" in result.stdout.str()
    by_rep = _by_rep(_results(toy_project, "killed"))
    assert sorted(by_rep) == [1, 2, 3]
    assert by_rep[2]["status"] == "crashed" and "did not finish" in by_rep[2]["error"]
    assert by_rep[1]["status"] == "success" and by_rep[3]["status"] == "failure"
    assert list(folder.glob("*.partial")) == []
    assert (folder / "scripted-standin-r02.yaml").read_text() == before
