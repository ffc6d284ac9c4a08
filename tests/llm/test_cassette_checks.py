"""The checks a cassette passes before a replay, its folder's manifest (written under a lock by
parallel recorders), the ``pytest-autopilot cassettes`` command and stale ``.partial`` files."""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import yaml

from pytest_autopilot import cli
from pytest_autopilot.core.util import sha256_file
from pytest_autopilot.llm.cassette_manifest import (
    MANIFEST_NAME,
    manifest_of,
    manifest_problem,
    record_in_manifest,
    write_manifests,
)
from pytest_autopilot.llm.cassettes import CassetteInvalid, check_cassette, partial_path, remove_stale_partials

REPLY = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}]})


def _cassette(body: str = REPLY, code: int = 200) -> dict:
    return {"version": 1, "interactions": [{
        "request": {"method": "POST", "uri": "http://127.0.0.1:9/v1/chat/completions", "body": "{}", "headers": {}},
        "response": {"status": {"code": code, "message": "OK"}, "headers": {}, "body": {"string": body}}}]}


def _write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("content, phrase", [
    ("", "empty file"),
    ("interactions:\n- request: {method: 'POST\n", "not valid YAML"),
    ("interactions: this: is not YAML\n", "not valid YAML"),
    ('!!python/object/apply:os.system ["true"]\n', "refused YAML tag"),
    ("just some text\n", "not a vcrpy cassette"),
    (_cassette("<html>502</html>"), "interaction 1: the response body is not JSON"),
    ({"interactions": [{"request": {"method": "POST"}}]}, "interaction 1: no request with method, uri, body"),
])
def test_an_unreadable_cassette_is_one_line_naming_it_and_the_fix(tmp_path, content, phrase):
    path = _write(tmp_path / "c.yaml", content)
    with pytest.raises(CassetteInvalid) as err:
        check_cassette(path, "cassettes/x/c.yaml")
    message = str(err.value)
    assert err.value.category == "cassette_invalid"
    assert message.startswith("cassettes/x/c.yaml:") and phrase in message and "\n" not in message
    assert "re-record it with --record-mode=all, or delete it" in message


def test_a_non_json_error_response_is_left_to_the_client(tmp_path):
    check_cassette(_write(tmp_path / "c.yaml", _cassette("<html>502</html>", code=502)), "c.yaml")


def test_manifest_entries_match_or_name_the_problem(tmp_path):
    folder = tmp_path / "case"
    good, other = _write(folder / "a.yaml", _cassette()), _write(folder / "b.yaml", _cassette())
    assert manifest_problem(good, "case/a.yaml").startswith("case/a.yaml: no sha256 entry in case/MANIFEST.sha256;")
    record_in_manifest(good)
    assert manifest_problem(good, "case/a.yaml") is None
    assert "no sha256 entry" in manifest_problem(other, "case/b.yaml")
    good.write_text(good.read_text().replace("hi", "ho"))
    problem = manifest_problem(good, "case/a.yaml")
    assert problem.startswith("case/a.yaml: content differs from its sha256 in case/MANIFEST.sha256")
    assert "pytest-autopilot cassettes --manifest" in problem


def _record_many(args) -> None:
    folder, worker = args
    for i in range(5):
        path = _write(Path(folder) / f"w{worker}-r{i}.yaml", _cassette(json.dumps({"n": [worker, i]})))
        record_in_manifest(path)


def test_parallel_recorders_keep_every_manifest_entry(tmp_path):
    with ProcessPoolExecutor(4) as pool:
        list(pool.map(_record_many, [(str(tmp_path), w) for w in range(4)]))
    entries = manifest_of(tmp_path)
    assert len(entries) == 20
    assert all(entries[p.name] == sha256_file(p) for p in tmp_path.glob("*.yaml"))


def test_the_cassettes_command_checks_and_writes_manifests(tmp_path, capsys):
    root = tmp_path / "cassettes"
    _write(root / "dp/x/a.yaml", _cassette())
    _write(root / "mc/y/b.yaml", _cassette())
    args = ["cassettes", "--autopilot-cassettes-dir", str(root)]
    assert cli.main(args) == 1
    assert "2 cassette(s) checked: 2 problem(s)" in capsys.readouterr().out
    assert cli.main([*args, "--manifest"]) == 0
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob(MANIFEST_NAME)) == [
        "dp/x/MANIFEST.sha256", "mc/y/MANIFEST.sha256"]
    assert cli.main(args) == 0
    _write(root / "mc/y/b.yaml", "interactions: [")
    assert cli.main(args) == 1
    assert "b.yaml: line" in capsys.readouterr().out
    assert cli.main(["cassettes", "--autopilot-cassettes-dir", str(tmp_path / "nowhere")]) == 2


def test_write_manifests_covers_every_folder_of_cassettes(tmp_path):
    _write(tmp_path / "a/one.yaml", _cassette())
    _write(tmp_path / "a/b/two.yaml", _cassette())
    assert [p.relative_to(tmp_path).as_posix() for p in write_manifests(tmp_path)] == [
        "a/MANIFEST.sha256", "a/b/MANIFEST.sha256"]
    assert list(manifest_of(tmp_path / "a")) == ["one.yaml"]


def test_stale_partials_go_and_a_live_writers_stay(tmp_path):
    cassette = tmp_path / "x/r01.yaml"
    mine = _write(partial_path(cassette), "half")  # this process: no run is in progress at session end
    assert mine.name == f"r01.yaml.{os.getpid()}.partial"
    legacy = _write(tmp_path / "x/r02.yaml.partial", "half")
    dead = _write(tmp_path / "x/r03.yaml.999999999.partial", "half")
    live = _write(tmp_path / f"x/r04.yaml.{os.getppid()}.partial", "half")
    assert sorted(p.name for p in remove_stale_partials(tmp_path)) == sorted(p.name for p in (mine, legacy, dead))
    assert [p.name for p in tmp_path.rglob("*.partial")] == [live.name]
