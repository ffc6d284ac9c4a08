"""Known-good alternatives (issue 23): a case's ``also_good:`` solutions are self-test items that
must be accepted; one the oracle rejects fails the self-test with its name and why it is correct,
and selftest.json marks it as an alternative. A missing file is a collection error."""

from __future__ import annotations

import json

GOOD = ('import pathlib\npathlib.Path("out.txt").write_text(str(6 * 7))\n', "computes 42 and writes it with pathlib")


def _with_also_good(root, good_text: str) -> None:
    case = root / "cases/toy/answer.yaml"
    case.write_text(case.read_text().replace(
        "  bad:\n", f"  also_good:\n    code:\n      - {{file: answer/solutions/good_pathlib.py, why: {GOOD[1]}}}\n  bad:\n"))
    (root / "cases/toy/answer/solutions/good_pathlib.py").write_text(good_text)


def test_an_accepted_alternative_passes_and_is_reported_as_one(toy_project, pytester):
    _with_also_good(toy_project, GOOD[0])
    result = pytester.runpytest("cases", "--autopilot-self-test", "-p", "no:xdist", "-k", "not bad_die",
                                "--autopilot-run-id", "st")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*ok answer[[]code-good_pathlib[]]: known-good alternative accepted by toy_answer*"])
    variants = json.loads((toy_project / "reports/st/selftest.json").read_text())["variants"]
    good = next(v for v in variants if v["solution"].endswith("good_pathlib.py"))
    reference = next(v for v in variants if v["solution"].endswith("reference.py"))
    assert (good["expected"], good["verdict"], good["alternative"]) == ("accepted", "accepted", True)
    assert reference["alternative"] is False


def test_a_rejected_alternative_fails_the_self_test_naming_it(toy_project, pytester):
    _with_also_good(toy_project, 'open("out.txt", "w").write("42.0")\n')  # the toy oracle wants exactly 42
    result = pytester.runpytest("cases", "--autopilot-self-test", "-p", "no:xdist", "-k", "good_pathlib")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*known-good ({GOOD[1]}) answer/solutions/good_pathlib.py rejected by "
                                 "toy_answer at code: value: got '42.0'*"])


def test_a_missing_alternative_file_is_a_collection_error(toy_project, pytester):
    _with_also_good(toy_project, GOOD[0])
    (toy_project / "cases/toy/answer/solutions/good_pathlib.py").unlink()
    result = pytester.runpytest("cases", "--co", "-q")
    result.stdout.fnmatch_lines(["*cases/toy/answer.yaml: field solutions.code: file 'answer/solutions/good_pathlib.py' "
                                 "not found*"])


def test_every_shipped_dp_and_mc_case_lists_a_known_good_alternative():
    from pathlib import Path

    import yaml

    root = Path(__file__).parents[2] / "cases"
    shipped = {p: yaml.safe_load(p.read_text()) for p in root.glob("*/*.yaml")}
    lacking = [p.name for p, raw in shipped.items() if raw["stage"] in ("DP", "MC") and not raw["solutions"].get("also_good")]
    assert len([raw for raw in shipped.values() if raw["stage"] in ("DP", "MC")]) >= 9 and not lacking, lacking
