"""Readable results: junit carries compact properties, never the run record; full check details
reach results.json and report.html, while the terminal and junit messages stay short and end
with where the full text is. The record still reaches the controller under xdist."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

LONG = "the long explanation " * 200  # a check detail far longer than any one-line message
MAX_TESTCASE_BYTES = 4096


def test_junit_is_compact_and_messages_point_to_the_full_text(toy_project, pytester):
    conftest = toy_project / "conftest.py"
    conftest.write_text(conftest.read_text().replace('f"got {text!r}"', f'f"got {{text!r}}; {LONG}"'))
    result = pytester.runpytest_subprocess("cases", "--autopilot-runs", "3", "--record-mode", "once", "-n", "2",
                                           "--autopilot-run-id", "j", "--junitxml", "junit.xml")
    result.assert_outcomes(passed=2, failed=1)  # r03 ends on bad_wrong: the value check with the long detail
    hint = "full text: reports/j/report.html#run-cases-toy-answer-yaml--answer-scripted-standin-r03- (and results.json)"
    message = next(line for line in result.stdout.lines if "failed checks: value" in line)
    assert message.endswith(hint) and len(message) < 500, message

    testcases = ET.parse(toy_project / "junit.xml").getroot().findall(".//testcase")
    assert len(testcases) == 3
    for testcase in testcases:
        size = len(ET.tostring(testcase))
        assert size < MAX_TESTCASE_BYTES, (testcase.get("name"), size)
        properties = {p.get("name"): p.get("value") for p in testcase.iter("property")}
        assert set(properties) == {"autopilot_case", "autopilot_model", "autopilot_strategy", "autopilot_repetition",
                                   "autopilot_status", "autopilot_strict", "autopilot_legacy", "autopilot_attempts",
                                   "autopilot_report"}
        assert properties["autopilot_case"] == "cases/toy/answer.yaml"
        assert properties["autopilot_model"] == "scripted-standin"
        assert properties["autopilot_strategy"] == "stateless"
        assert properties["autopilot_report"] == "reports/j/results.json"
        assert '"attempts"' not in ET.tostring(testcase, encoding="unicode")  # no run record JSON
    failed = next(t for t in testcases if t.find("failure") is not None)
    assert failed.find("failure").get("message").endswith(hint)
    props = {p.get("name"): p.get("value") for p in failed.iter("property")}
    assert (props["autopilot_status"], props["autopilot_strict"], props["autopilot_attempts"]) == ("failure", "False", "2")

    # the records still reached the controller from the workers, with every detail in full
    runs = {r["repetition"]: r for r in json.loads((toy_project / "reports/j/results.json").read_text())["runs"]}
    assert sorted(runs) == [1, 2, 3] and all(r["worker"].startswith("gw") for r in runs.values())
    detail = runs[3]["attempts"][-1]["strict"]["checks"][0]["detail"]
    assert detail == f"got '41'; {LONG}"
    html = (toy_project / "reports/j/report.html").read_text()
    assert 'id="run-cases-toy-answer-yaml--answer-scripted-standin-r03-"' in html
    assert LONG.strip() in html
