"""The self-test of a pipeline (issue 23, the end-to-end case): a known-bad answer whose broken file its own
step's oracle lets through is judged by the first rejection from its step on, at the later step
that received the file; the report says at which step. A known-good one must carry the whole
pipeline through."""

from __future__ import annotations

import json

PIPELINE = """\
stage: Pipeline
description: write the answer in two steps
context: {number: 42}
steps:
  - name: make
    prompt: toy/answer.j2
    outputs: [value.txt]
    oracle: {name: output_files, params: {files: {value.txt: null}}}
  - name: code
    prompt: toy/answer.j2
    oracle: {name: toy_answer, params: {expected: "42"}}
solutions:
  reference: {make: answer/solutions/make.py, code: answer/solutions/copy.py}
  also_good:
    make:
      - {file: answer/solutions/make_padded.py, why: writes 42 with a newline}
  bad:
    make:
      - {file: answer/solutions/make_41.py, why: writes 41; only the next step can tell, caught_by: value}
      - {file: answer/solutions/make_nothing.py, why: writes no file, caught_by: exists:value.txt}
standin:
  - {make: [reference], code: [reference]}
"""
SOLUTIONS = {
    "make.py": 'open("value.txt", "w").write("42")\n',
    "make_padded.py": 'open("value.txt", "w").write("42\\n")\n',
    "make_41.py": 'open("value.txt", "w").write("41")\n',
    "make_nothing.py": 'print("done")\n',
    "copy.py": 'open("out.txt", "w").write(open("value.txt").read())\n',
}


def test_a_bad_file_its_step_lets_through_is_caught_at_the_step_that_uses_it(toy_project, pytester):
    (toy_project / "cases/toy/answer.yaml").write_text(PIPELINE)
    for name, code in SOLUTIONS.items():
        (toy_project / "cases/toy/answer/solutions" / name).write_text(code)
    result = pytester.runpytest("cases", "--autopilot-self-test", "-p", "no:xdist", "-v", "--autopilot-run-id", "st")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines_random([
        "*answer[[]make-make_41[]] PASSED (rejected by toy_answer.value at step code)*",
        "*answer[[]make-make_nothing[]] PASSED (rejected by output_files.exists:value.txt)*",
        "*ok answer[[]make-make_41[]]: rejected by toy_answer.value at step code = caught_by: got '41'*",
    ])
    variants = {v["solution"].split("/")[-1]: v for v in
                json.loads((toy_project / "reports/st/selftest.json").read_text())["variants"]}
    assert (variants["make_41.py"]["step"], variants["make_41.py"]["caught_at"]) == ("make", "code")
    assert variants["make_41.py"]["oracle"] == "toy_answer"
    assert variants["make_nothing.py"]["caught_at"] is None  # caught at its own step
    assert variants["make_padded.py"]["verdict"] == "accepted"  # the next step accepts what it wrote too
