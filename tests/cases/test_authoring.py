"""Authoring help (issue 24): ``pytest-autopilot oracles [NAME]``, ``pytest-autopilot schema``, and
collection naming every problem of a case file at once."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from pytest_autopilot.cases import authoring
from pytest_autopilot.cli import main
from pytest_autopilot.oracles import BUILTIN_PARAMS, params_model

ROOT = Path(__file__).resolve().parents[2]


def _shipped_case_files() -> list[Path]:
    roots = [ROOT / "cases", ROOT / "tests/data", ROOT / "pytest_autopilot/data/scaffold/cases"]
    return sorted(p for root in roots for p in root.rglob("*.yaml")
                  if not {"assets", "solutions"} & set(p.relative_to(root).parts[:-1]))


# ---- oracles


@pytest.mark.parametrize("name", sorted(BUILTIN_PARAMS))
def test_every_param_of_every_oracle_is_described_with_type_default_and_an_example(name):
    rows = list(authoring.param_lines(params_model(BUILTIN_PARAMS[name])))
    assert rows
    assert [r[0] for r in rows if not r[3]] == []  # a description for every param, nested ones too
    text = authoring.describe_oracle(name)
    for param, kind, default, description in rows:
        assert f"{param:<{max(len(r[0]) for r in rows)}}  {kind} ({default})  {description}" in text
    snippet = yaml.safe_load(text.split("example (under a step):\n", 1)[1])
    assert snippet["oracle"]["name"] == name
    params_model(BUILTIN_PARAMS[name]).model_validate(snippet["oracle"]["params"])  # the example is valid


def test_oracles_command_prints_one_or_all_and_suggests_a_name(capsys):
    assert main(["oracles", "dp_reference"]) == 0
    one = capsys.readouterr().out
    assert one.startswith("dp_reference: ") and "mc_tflite" not in one
    assert "split.class_slack_rows" in one and "int (default 1)" in one
    # the whole first paragraph of the docstring, and the checks caught_by may name
    assert one.splitlines()[0].endswith("then on generated ones, and their output files are compared.")
    assert "checks (what caught_by may name" in one and "split_stratified, deterministic" in one
    assert main(["oracles"]) == 0
    every = capsys.readouterr().out
    assert all(f"\n{name}: " in "\n" + every for name in BUILTIN_PARAMS)
    assert main(["oracles", "dp_refrence"]) == 2
    assert "did you mean 'dp_reference'?" in capsys.readouterr().err


# ---- schema


@pytest.fixture(scope="module")
def validator():
    schema = authoring.case_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path", _shipped_case_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_case_fits_the_schema(validator, path):
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
    assert errors == []


def test_the_schema_rejects_what_collection_rejects(validator):
    raw = yaml.safe_load((ROOT / "tests/data/gesture_case/cases/dp/gesture_scale.yaml").read_text())
    params = raw["steps"][0]["oracle"]["params"]
    assert not list(validator.iter_errors(raw))
    for mistake in ({"standin_script": []}, {"repair": {"max_attempts": 0}}):
        assert list(validator.iter_errors({**raw, **mistake})), mistake
    for mistake in ({"rows": {"kee": ["sample_id"]}}, {"files": [{"path": "/abs.csv"}]}, {"column_order": "yes"}):
        step = {**raw["steps"][0], "oracle": {"name": "dp_reference", "params": {**params, **mistake}}}
        assert list(validator.iter_errors({**raw, "steps": [step]})), mistake
    # ${context.key} is accepted for any param value; an oracle a conftest registers is not checked
    step = {**raw["steps"][0], "oracle": {"name": "dp_reference", "params": {**params, "column_order": "${context.order}"}}}
    assert not list(validator.iter_errors({**raw, "steps": [step]}))
    step = {**raw["steps"][0], "oracle": {"name": "my_own", "params": {"anything": 1}}}
    assert not list(validator.iter_errors({**raw, "steps": [step]}))


def test_schema_command_writes_the_file(tmp_path, capsys):
    out = tmp_path / "case.schema.json"
    assert main(["schema", str(out)]) == 0
    assert json.loads(out.read_text()) == authoring.case_schema()
    assert "yaml-language-server: $schema=" in capsys.readouterr().out
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "pytest-autopilot case file"


# ---- every problem at once

TOY = """\
stage: DP
description: toy
limts: {cpu_s: 5}
steps:
  - name: code
    prompt: toy/missing.j2
    oracle: {name: output_files, params: {files: {out.txt: {equal: "42"}}, extra: 1}}
repair: {max_attempts: 0}
requires: {toolchains: [pyhton]}
solutions:
  reference: {code: answer/solutions/reference.py}
standin: [{code: [reference]}]
"""


def test_collection_names_every_problem_of_a_case_file_one_line_each(pytester):
    pytester.makeini("[pytest]\nautopilot_cases_dir = cases\n")
    (pytester.path / "cases/toy").mkdir(parents=True)
    (pytester.path / "cases/toy/answer.yaml").write_text(TOY)
    result = pytester.runpytest("cases", "-p", "no:xdist")
    out = result.stdout.str()
    assert "cases/toy/answer.yaml: field limts: unknown field" in out
    assert "cases/toy/answer.yaml: field repair.max_attempts: Input should be greater than or equal to 1" in out
    assert "more)" not in out
    # once the schema holds, the files, templates and the session's registries, all at once
    fixed = TOY.replace("limts: {cpu_s: 5}\n", "").replace("max_attempts: 0", "max_attempts: 2")
    (pytester.path / "cases/toy/answer.yaml").write_text(fixed)
    out = pytester.runpytest("cases", "-p", "no:xdist").stdout.str()
    expected = ["field steps.code.prompt: template 'toy/missing.j2' not found",
                "field solutions.code: file 'answer/solutions/reference.py' not found",
                "field requires.toolchains.0: unknown toolchain 'pyhton'",
                "field steps.code.oracle.params.files.out.txt.equal: unknown field",
                "field steps.code.oracle.params.extra: not a param of oracle output_files"]
    lines = [line for line in out.splitlines() if line.startswith("cases/toy/answer.yaml: field")]
    for text in expected:
        assert sum(text in line for line in lines) == 1, (text, out)
    assert "more)" not in out
