"""Cassettes holding interactions no replay uses (issue 22: three committed cassettes kept an
earlier recording's turns). A re-recording with --record-mode=all starts afresh; a replay warns
of the interactions it never played (on CI too, where it is a warning, not an error); and
``pytest-autopilot cassettes`` lists them. Real pytest runs of the toy case through real HTTP
(the scripted stand-in) and vcrpy."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import yaml

from pytest_autopilot import cli

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CASSETTE = "cassettes/toy/answer/scripted-standin-r01.yaml"


def _run(pytester, *args):
    return pytester.runpytest("cases", "-p", "no:xdist", "--autopilot-runs", "1", *args)


def _interactions(path: Path) -> list[dict]:
    return yaml.safe_load(path.read_text())["interactions"]


def _add_an_earlier_recordings_turn(path: Path) -> str:
    """Put a turn no run of today's prompts asks for in front of the cassette's own; its prompt."""
    data = yaml.safe_load(path.read_text())
    orphan = copy.deepcopy(data["interactions"][0])
    body = json.loads(orphan["request"]["body"])
    body["messages"][-1]["content"] += "\n(a prompt of an earlier version)"
    orphan["request"]["body"] = json.dumps(body)
    data["interactions"].insert(0, orphan)
    path.write_text(yaml.safe_dump(data))
    return body["messages"][-1]["content"]


@pytest.fixture(scope="module")
def recording(tmp_path_factory, record_toy) -> Path:
    """The toy case's cassette folder, recorded once for the module by a real run (each test gets a copy)."""
    root = tmp_path_factory.mktemp("toy-recording")
    out = record_toy(root, runs=1)
    assert out.returncode == 0 and (root / CASSETTE).is_file(), out.stdout[-3000:] + out.stderr[-2000:]
    return root / "cassettes"


@pytest.fixture
def recorded(recording, toy_project, monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOPILOT_CACHE_DIR", str(tmp_path / "cache"))  # what replays noted, for this test only
    shutil.copytree(recording, toy_project / "cassettes")
    path = toy_project / CASSETTE
    return path, len(_interactions(path))


def test_rerecording_with_record_mode_all_keeps_none_of_the_old_interactions(recorded, pytester):
    path, used = recorded
    old_prompt = _add_an_earlier_recordings_turn(path)
    _run(pytester, "--record-mode", "all", "--autopilot-run-id", "again")
    interactions = _interactions(path)
    assert len(interactions) == used
    assert not any(old_prompt in json.loads(i["request"]["body"])["messages"][-1]["content"] for i in interactions)


def test_a_replay_warns_of_interactions_it_never_played_and_the_command_lists_them(recorded, pytester, monkeypatch,
                                                                                    capsys):
    path, used = recorded
    _add_an_earlier_recordings_turn(path)
    monkeypatch.chdir(pytester.path)
    assert cli.main(["cassettes", "--manifest"]) == 0  # trusted as it is: only the unused turn is wrong
    capsys.readouterr()
    monkeypatch.setenv("CI", "true")
    result = _run(pytester, "--record-mode", "none", "--autopilot-run-id", "ci")
    result.assert_outcomes(passed=1)  # a warning: the run itself replayed fine
    expected = (f"{CASSETTE}: 1 of its {used + 1} interactions were never replayed (interactions 1; left from an "
                "earlier recording?); re-record it with --record-mode=all")
    (run,) = json.loads((pytester.path / "reports/ci/results.json").read_text())["runs"]
    assert run["warnings"] == [expected]
    assert f"warning: {expected}" in result.stdout.str()
    assert cli.main(["cassettes"]) == 0  # unused turns are reported, not a failed check
    out = capsys.readouterr().out
    assert f"unused: {expected}" in out and "1 with interactions their last replay never used" in out


def test_a_cassette_not_replayed_here_is_said_to_be_unknown(recorded, monkeypatch, capsys, pytester, tmp_path):
    monkeypatch.setenv("AUTOPILOT_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.chdir(pytester.path)
    assert cli.main(["cassettes"]) == 0
    assert "(1 not replayed on this machine yet: replay with --record-mode=none to know)" in capsys.readouterr().out
