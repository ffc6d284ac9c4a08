"""Everything a case names is checked at collection, one line each naming the file, the field and
the fix: top-level and nested fields, oracle names and params, ``${context.*}`` references,
template variables, solution files, boards, executors, toolchains and environments."""

from __future__ import annotations

import fnmatch
import types
from pathlib import Path

import pytest

from pytest_autopilot.cases import prompts
from pytest_autopilot.cases.case_checks import TEMPLATE_FIELDS, loop_variables
from pytest_autopilot.cases.spec import CaseError, load_case
from pytest_autopilot.loop.registries import Registries

CASE = """\
stage: DP
description: write the answer
context: {number: 42, expected: "42", accelerator: none}
steps:
  - name: code
    prompt: toy/answer.j2
    oracle: {name: output_files, params: {files: {out.txt: {equals: "${context.expected}"}}}}
solutions:
  reference: {code: answer/solutions/reference.py}
  bad:
    code:
      - {file: answer/solutions/bad_wrong.py, why: writes 41}
standin:
  - {code: [bad_wrong, reference]}
"""
PROMPT = ("Write {{ number }} to out.txt. {{ description }}\n"
          "{% if accelerator == 'edgetpu' %}Use {{ edgetpu_model_file }}.{% endif %}\n")


@pytest.fixture
def project(tmp_path) -> Path:
    (tmp_path / "cases/toy/answer/solutions").mkdir(parents=True)
    (tmp_path / "prompts/toy").mkdir(parents=True)
    (tmp_path / "cases/toy/answer.yaml").write_text(CASE)
    (tmp_path / "cases/toy/answer/solutions/reference.py").write_text('open("out.txt", "w").write("42")\n')
    (tmp_path / "cases/toy/answer/solutions/bad_wrong.py").write_text('open("out.txt", "w").write("41")\n')
    (tmp_path / "prompts/toy/answer.j2").write_text(PROMPT)
    return tmp_path


def _check(project: Path, old: str = "", new: str = "", prompt: str | None = None, files: dict | None = None):
    """Load the toy case after one edit and check it against fresh registries, as collection does."""
    path = project / "cases/toy/answer.yaml"
    if old:
        assert old in CASE, old
        path.write_text(CASE.replace(old, new, 1))
    if prompt is not None:
        (project / "prompts/toy/answer.j2").write_text(prompt)
    for rel, text in (files or {}).items():
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text(text)
    return load_case(path, project / "prompts", project / "hardware", Registries())


def _error(project: Path, *args, **kwargs) -> str:
    with pytest.raises(CaseError) as err:
        _check(project, *args, **kwargs)
    lines = str(err.value).splitlines()  # every problem, one line each; the mistake's own comes first
    prefix = f"{project / 'cases/toy/answer.yaml'}: "
    assert all(line.startswith(prefix) for line in lines), lines
    return lines[0].removeprefix(prefix)


def test_the_toy_case_is_clean(project):
    case = _check(project)
    assert case.step("code").oracle.params == {"files": {"out.txt": {"equals": "42"}}}


KNOWN_ORACLES = ("ardsg_app_spec, ardsg_firmware, dp_clean_split, dp_operation, dp_plan, dp_reference, mc_tflite, "
                 "output_files, vision_detection (or register one in conftest.py)")


@pytest.mark.parametrize("old, new, expected", [
    # fields of the case file: a misspelt one is reported as itself, before what it leaves missing
    ("standin:", "standn:", "field standn: unknown field; did you mean 'standin'?"),
    ("stage: DP", "stage: DP\ncolour: blue", "field colour: unknown field; remove it or check its spelling (known: "
     "stage, description, tier, board, environment, executor, assets, workspace, context, steps, repair, timeouts, "
     "limits, requires, solutions, standin)"),
    ("    prompt: toy/answer.j2", "    prompt: toy/answer.j2\n    oracel: {}", "field steps.code.oracel: unknown field; "
     "did you mean 'oracle'?"),
    # oracle names and params
    ("name: output_files", "name: output_file", "field steps.code.oracle.name: unknown oracle 'output_file'; "
     f"known: {KNOWN_ORACLES}; did you mean 'output_files'?"),
    ('{out.txt: {equals: "${context.expected}"}}', "{out.txt: {match: '^42$'}}",
     "field steps.code.oracle.params.files.out.txt.match: unknown field; did you mean 'matches'?"),
    ('{out.txt: {equals: "${context.expected}"}}', "[out.txt]",
     "field steps.code.oracle.params.files: Input should be a valid dictionary, got ['out.txt']"),
    ("params: {files:", "params: {fils:", "field steps.code.oracle.params.fils: not a param of oracle output_files; "
     "did you mean 'files'?"),
    # references to the context
    ("${context.expected}", "${context.expectd}", "field steps.code.oracle.params.files.out.txt.equals: "
     "${context.expectd} names nothing in the case's context: context has no key 'expectd'; did you mean 'expected'?"),
    ("${context.expected}", "${expected}", "field steps.code.oracle.params.files.out.txt.equals: ${expected} is not "
     "a reference to the case's context; write ${context.<key>}, or $${ for a literal ${"),
    # solution files
    ("answer/solutions/bad_wrong.py", "answer/solutions/bad_wrog.py",
     "field solutions.code: file 'answer/solutions/bad_wrog.py' not found (relative to the case file)"),
    ("{code: [bad_wrong, reference]}", "{code: [bad_wromg, reference]}",
     "field standin[0].code: 'bad_wromg' is not a solution file stem; did you mean 'bad_wrong'?"),
    ("  reference: {code:", "  reference: {cod:", "field solutions: key 'cod' names no step; did you mean 'code'?"),
    # executors, toolchains, environments
    ("stage: DP", "stage: DP\nexecutor: pyhton", "field executor: unknown executor 'pyhton'; known: arduino, "
     "arm-none-eabi, python, ssh, warm-pandas, warm-tensorflow (or register one in conftest.py); "
     "did you mean 'python'?"),
    ("stage: DP", "stage: DP\nrequires: {toolchains: [python, panda]}",
     "field requires.toolchains.1: unknown toolchain 'panda'; known: *pandas* (or register one in conftest.py); "
     "did you mean 'pandas'?"),
    ("stage: DP", "stage: DP\nenvironment: {python: '3.11', packages: ['numpy=1.26']}",
     "field environment.packages.0: 'numpy=1.26' is not a pip requirement (Expected semicolon (after name with no "
     "version specifier) or end); write e.g. 'numpy==1.26.4'"),
    ("stage: DP", "stage: DP\nenvironment: {python: '3.11', packages: ['numpy==1.26.4', 'NumPy<2']}",
     "field environment.packages.1: lists NumPy twice ('numpy==1.26.4' and 'NumPy<2'); keep one"),
    ("stage: DP", "stage: DP\nexecutor: warm-tensorflow\nenvironment: {python: '3.11', packages: [numpy]}",
     "field environment: executor 'warm-tensorflow' does not run programs in a declared environment (only 'python' "
     "does); remove environment or use executor: python"),
    # a pipeline step's own executor and the files it passes on
    ("    prompt: toy/answer.j2", "    prompt: toy/answer.j2\n    executor: ardiuno", "field steps.code.executor: "
     "unknown executor 'ardiuno'; known: arduino, arm-none-eabi, python, ssh, warm-pandas, warm-tensorflow "
     "(or register one in conftest.py); did you mean 'arduino'?"),
    ("    prompt: toy/answer.j2", "    prompt: toy/answer.j2\n    outputs: [../model.h]",
     "field steps.code.outputs: '../model.h' must be a relative path inside the sandbox"),
])
def test_each_mistake_is_one_line_naming_field_and_fix(project, old, new, expected):
    message = _error(project, old, new)
    assert fnmatch.fnmatchcase(message, expected) if "*" in expected else message == expected, message


def test_a_misspelt_board_gets_a_did_you_mean(project):
    message = _error(project, "stage: DP", "stage: DP\nboard: arduino_un")
    assert message.startswith(f"field board: no board 'arduino_un' in {project / 'hardware'} or the packaged "
                              "boards (known: arduino_uno, "), message
    assert message.endswith("); add arduino_un.yaml to register it, or did you mean 'arduino_uno'?")


def test_a_board_s_software_is_checked_without_building_it(project):
    board = ("display_name: Pi\narchitecture: aarch64\nmemory: {flash_kb: 1, ram_kb: 1}\n"
             "software: {python: '3.11', packages: ['numpy==1.26.4', 'tflite_runtime=2.14']}\n")
    message = _error(project, "stage: DP", "stage: DP\nboard: my_pi", files={"hardware/my_pi.yaml": board})
    assert message.startswith("field board: hardware/my_pi.yaml software.packages: 'tflite_runtime=2.14' is not "
                              "a pip requirement ("), message


@pytest.mark.parametrize("prompt, files, expected", [
    ("Write {{ numbr }} to out.txt.\n", {}, "field steps.code.prompt: template toy/answer.j2 uses {{ numbr }} "
     "(did you mean 'number'?), which the case's context does not give; add it to context or fix the template"),
    ("{% include 'toy/part.j2' %}\n", {"prompts/toy/part.j2": "{{ number }} {{ unit }}\n"},
     "field steps.code.prompt: template toy/answer.j2 (via toy/part.j2) uses {{ unit }}, which the case's context "
     "does not give; add it to context or fix the template"),
    ("{% include 'toy/gone.j2' %}\n", {}, "field steps.code.prompt: template 'toy/gone.j2', used by toy/answer.j2, "
     "is not found in {prompts} or the packaged prompts"),
    ("Write {{ number }\n", {}, "field steps.code.prompt: template toy/answer.j2 line 1: unexpected '}'; fix its syntax"),
    ("Write {{ number }}. Spec: {{ steps.spec }}\n", {}, "field steps.code.prompt: template toy/answer.j2 reads "
     "steps.spec, which is no earlier step's answer; earlier steps: none"),
])
def test_template_variables_are_checked_against_the_context_and_the_loop(project, prompt, files, expected):
    assert _error(project, prompt=prompt, files=files) == expected.replace("{prompts}", str(project / "prompts"))


def test_the_repair_prompt_is_checked_with_the_variables_the_loop_gives_it(project):
    files = {"prompts/toy/repair.j2": "{{ task }}\n{{ previous_answer }}\n{{ eror }}\n"}
    message = _error(project, "    prompt: toy/answer.j2", "    prompt: toy/answer.j2\n    repair_prompt: toy/repair.j2",
                     files=files)
    assert message == ("field steps.code.repair_prompt: template toy/repair.j2 uses {{ eror }} (did you mean "
                       "'error'?), which the case's context does not give; add it to context or fix the template")


def test_variables_in_branches_the_context_does_not_take_or_guarded_are_no_error(project):
    prompt = PROMPT + "{{ seed | default(1) }}{% if speed is defined %}{{ speed }}{% endif %}\n"
    _check(project, prompt=prompt)  # edgetpu_model_file is read only when accelerator == 'edgetpu'
    message = _error(project, "accelerator: none", "accelerator: edgetpu", prompt=prompt)
    assert message.startswith("field steps.code.prompt: template toy/answer.j2 uses {{ edgetpu_model_file }}")


def test_context_references_keep_types_and_substitute_text(project):
    old = '{files: {out.txt: {equals: "${context.expected}"}}}'
    new = ('{files: {out.txt: {equals: "${context.number}", matches: "^${context.number}$$"}, log.txt: {matches: "$${x}"}}, '
           'n: "${context.number}"}')
    case = load_case(_write(project, CASE.replace(old, new).replace("name: output_files", "name: free")),
                     project / "prompts", project / "hardware")
    assert case.step("code").oracle.params == {  # whole values keep the type, parts become text, $${ is ${
        "files": {"out.txt": {"equals": 42, "matches": "^42$$"}, "log.txt": {"matches": "${x}"}}, "n": 42}
    message = _error(project, "${context.expected}", "see ${context.steps}")
    assert message == ("field steps.code.oracle.params.files.out.txt.equals: ${context.steps} names nothing in the "
                       "case's context: context has no key 'steps' (keys: number, expected, accelerator)")


def _write(project: Path, text: str) -> Path:
    path = project / "cases/toy/answer.yaml"
    path.write_text(text)
    return path


def test_the_variables_checked_are_the_ones_the_repair_loop_renders_with(project, monkeypatch):
    from pytest_autopilot.loop.repair import RepairLoop

    case = _check(project)
    step = case.step("code")
    rendered: dict[str, set] = {}
    monkeypatch.setattr(prompts, "render", lambda d, template, variables: rendered.setdefault(template, set(variables)) and "")
    fake = types.SimpleNamespace(case=case, settings=types.SimpleNamespace(error_chars=2000, code_chars=12_000),
                                 registries=Registries())
    variables = RepairLoop._variables(fake, step, {}, None, None, {})
    prompts.render(case.prompts_dir, step.prompt, variables)
    for strategy in ("stateless", "conversation"):
        fake.settings.strategy = strategy
        RepairLoop._next_messages(fake, step, [], variables, "task", 1, types.SimpleNamespace(code="x", execution=None),
                                 "x", "boom")
    fields = {getattr(step, f): f for f in TEMPLATE_FIELDS}
    assert set(rendered) == set(fields)
    for template, names in rendered.items():
        assert names == set(loop_variables(case, step, fields[template])), template


# ----------------------------------------------------------------------------- through pytest


def _add_bad_case(toy_project: Path, old: str, new: str) -> None:
    text = (toy_project / "cases/toy/answer.yaml").read_text()
    assert old in text
    (toy_project / "cases/toy/bad.yaml").write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("old, new, expected", [
    ("standin:", "standn:", "cases/toy/bad.yaml: field standn: unknown field; did you mean 'standin'?"),
    ("toy_answer", "toy_answr", "cases/toy/bad.yaml: field steps.code.oracle.name: unknown oracle 'toy_answr'; "
     "known: ardsg_app_spec, *, toy_answer, vision_detection (or register one in conftest.py); did you mean 'toy_answer'?"),
    ("context: {number: 42}", "context: {nmber: 42}", "cases/toy/bad.yaml: field steps.code.prompt: template "
     "toy/answer.j2 uses {{ number }} (did you mean 'nmber'?), which the case's context does not give; add it to "
     "context or fix the template"),
])
def test_a_bad_case_is_one_collection_error_and_the_others_collect(toy_project, pytester, old, new, expected):
    _add_bad_case(toy_project, old, new)
    result = pytester.runpytest("cases", "--co", "-q")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    output = result.stdout.str()
    reported = [line for line in result.stdout.lines if line.startswith("cases/toy/bad.yaml:")]
    assert len(reported) == 1 and fnmatch.fnmatchcase(reported[0], expected), output
    assert "Traceback" not in output and "pydantic" not in output
    assert "cases/toy/answer.yaml::answer[" in output


def test_a_bad_case_does_not_stop_the_good_one_from_running(toy_project, pytester):
    _add_bad_case(toy_project, "expected: \"42\"", "expected: \"${context.numbr}\"")
    result = pytester.runpytest("cases", "--autopilot-self-test", "-p", "no:xdist")
    result.assert_outcomes(passed=5, errors=1)
    result.stdout.fnmatch_lines(["cases/toy/bad.yaml: field steps.code.oracle.params.expected: ${context.numbr} names "
                                 "nothing in the case's context: context has no key 'numbr'; did you mean 'number'?"])
