"""Self-test reasons: each rejected known-bad solution's line names the check that rejected it,
a declared ``caught_by`` that another check pre-empts fails the item (right verdict, wrong
reason), a malformed one fails collection, and the run writes ``selftest.json``."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

BADS = """\
    code:
      - {file: answer/solutions/bad_no_output.py, why: exits 0 without writing, caught_by: exists}
      - {file: answer/solutions/bad_wrong.py, why: writes 41, caught_by: toy_answer.value}
      - {file: answer/solutions/bad_crash.py, why: raises, caught_by: value}
      - {file: answer/solutions/bad_die.py, why: writes die}
"""


def _declare(project, bads: str) -> None:
    case = project / "cases/toy/answer.yaml"
    text = case.read_text()
    start, end = text.index("    code:\n      - {file: answer/solutions/bad_no_output.py"), text.index("standin:")
    case.write_text(text[:start] + bads + text[end:])


def test_each_line_names_the_rejecting_check_and_a_pre_empted_caught_by_fails(toy_project, pytester):
    _declare(toy_project, BADS)
    result = pytester.runpytest_subprocess("cases", "--autopilot-self-test", "-v", "-n", "2",
                                           "--autopilot-run-id", "st")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines_random([  # xdist's -v layout: "[gw0] [ 20%] <word> <nodeid>"
        "* PASSED (rejected by toy_answer.exists) *answer[[]code-bad_no_output[]]*",
        "* PASSED (rejected by toy_answer.value) *answer[[]code-bad_wrong[]]*",
        "* PASSED (rejected by toy_answer.value) *answer[[]code-bad_die[]]*",
        "* PASSED *answer[[]code-reference[]]*",
        # the crash is rejected, but by the output check, not the declared one
        "*known-bad answer/solutions/bad_crash.py rejected for another reason: by toy_answer.exists "
        "(out.txt missing), not by caught_by 'value' (no check of that name ran; its checks: exists)*",
    ])
    out = result.stdout.str()
    summary = out[out.index("autopilot self-test"):]
    assert "ok answer[code-bad_wrong]: rejected by toy_answer.value = caught_by: got '41'" in summary
    assert "ok answer[code-bad_die]: rejected by toy_answer.value: got 'die'" in summary
    assert "FAIL answer[code-bad_crash]: known-bad answer/solutions/bad_crash.py rejected for another" in summary
    assert "4/5 judged as declared; 2/3 known-bad caught by their declared check, 1 declare none" in summary
    assert "self-test report: reports/st/selftest.json" in summary

    report = json.loads((toy_project / "reports/st/selftest.json").read_text())
    assert report["as_expected"] is False and report["run_id"] == "st"
    assert report["counts"] == {"judged": 5, "as_expected": 4, "failed": 1, "skipped": 0, "caught_by_declared": 3}
    variants = {v["solution"].split("/")[-1]: v for v in report["variants"]}
    assert [v["solution"] for v in report["variants"]][0] == "answer/solutions/reference.py"  # references first
    assert variants["reference.py"] | {"duration_s": 0} == {
        "nodeid": "cases/toy/answer.yaml::answer[code-reference]", "case": "cases/toy/answer.yaml",
        "solution": "answer/solutions/reference.py", "step": "code", "expected": "accepted", "verdict": "accepted",
        "oracle": "toy_answer", "rejected_by": [], "caught_by": None, "caught_by_matched": None, "category": None,
        "checks": ["value"], "legacy_accepted": True, "legacy_failed": [], "alternative": False, "caught_at": None,
        "duration_s": 0, "problem": None}
    wrong = variants["bad_wrong.py"]
    assert (wrong["expected"], wrong["verdict"], wrong["caught_by"], wrong["caught_by_matched"]) == (
        "rejected", "rejected", "toy_answer.value", True)
    assert wrong["rejected_by"] == [{"check": "toy_answer.value", "detail": "got '41'"}]
    assert (wrong["category"], wrong["checks"]) == ("semantic_mismatch", ["value"])
    assert (variants["bad_no_output.py"]["category"], variants["bad_no_output.py"]["checks"]) == ("artifact_missing", ["exists"])
    assert variants["bad_crash.py"]["caught_by_matched"] is False
    assert variants["bad_crash.py"]["problem"].startswith("known-bad answer/solutions/bad_crash.py rejected for")
    assert variants["bad_die.py"]["caught_by_matched"] is None  # declares none
    assert all(v["duration_s"] > 0 for v in report["variants"])


def test_a_caught_by_whose_check_passed_says_so(toy_project, pytester):
    conftest = toy_project / "conftest.py"  # the oracle also reports its passing exists check
    conftest.write_text(conftest.read_text().replace('[Check("value"', '[Check("exists", True), Check("value"'))
    _declare(toy_project, BADS.replace("caught_by: toy_answer.value", "caught_by: exists"))
    result = pytester.runpytest("cases", "--autopilot-self-test", "-p", "no:xdist", "-v", "-k", "bad_")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines_random(["*answer[[]code-bad_no_output[]] PASSED (rejected by toy_answer.exists)*",
                                        "*answer[[]code-bad_wrong[]] FAILED*"])
    result.stdout.fnmatch_lines(["*bad_wrong.py rejected for another reason: by toy_answer.value (got '41'), "
                                 "not by caught_by 'exists' (that check passed)*"])


@pytest.mark.parametrize("caught_by, expected", [
    ("dp_clean_split.exists", "answer.yaml: field solutions.bad.code[0].caught_by: 'dp_clean_split.exists' names "
                              "oracle dp_clean_split, but step code is judged by toy_answer; write toy_answer.exists "
                              "or just exists"),
    ("'two words'", "answer.yaml: field solutions.bad.code[0].caught_by: 'two words' is not a check name; write "
                    "`check` or `oracle.check`"),
])
def test_a_malformed_caught_by_fails_collection_with_one_line(toy_project, pytester, caught_by, expected):
    _declare(toy_project, BADS.replace("caught_by: exists", f"caught_by: {caught_by}"))
    result = pytester.runpytest("cases", "--co", "-q", "--autopilot-self-test")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert expected in result.stdout.str()
    assert "Traceback" not in result.stdout.str()
