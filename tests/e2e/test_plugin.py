"""The plugin end to end with pytester: options, collection, ids, bad case files, the repair
loop against the scripted stand-in, record/replay, xdist merging and crash survival."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def results(root: Path) -> dict:
    files = sorted(root.glob("reports/*/results.json"))
    assert len(files) == 1, files
    return json.loads(files[0].read_text())


def test_help_lists_options_ini_keys_and_markers(pytester):
    help_text = pytester.runpytest("--help").stdout.str()
    for flag in ("--autopilot-llm", "--autopilot-runs", "--autopilot-self-test", "--record-mode",
                 "--autopilot-max-attempts", "--autopilot-reports-dir"):
        assert flag in help_text
    for ini in ("autopilot_llm", "autopilot_runs", "autopilot_models", "autopilot_record_mode"):
        assert ini in help_text
    assert "pytest-autopilot" in help_text
    pytester.makeini("[pytest]\nautopilot_cases_dir = cases\n")  # the markers come with the opt-in
    markers = pytester.runpytest("--markers").stdout.str()
    for marker in ("@pytest.mark.autopilot", "@pytest.mark.dp", "@pytest.mark.scripted", "@pytest.mark.self_test"):
        assert marker in markers


def test_ids_are_stable_readable_and_cover_profiles(write_file, toy_project, pytester):
    write_file(toy_project, "autopilot-models.yaml", """\
        models:
          ollama/qwen2.5-coder:14b:
            profiles:
              p: {temperature: 0.1, top_p: 0.3}
              np: {}
        """)
    args = ["cases", "--co", "-q", "--autopilot-runs", "2", "--autopilot-llm", "ollama/qwen2.5-coder:14b",
            "--autopilot-llm", "openai/gpt-4o"]
    first = pytester.runpytest(*args).stdout.lines
    second = pytester.runpytest(*args).stdout.lines
    ids = [line for line in first if "::" in line]
    assert ids == [line for line in second if "::" in line]
    assert ids == [
        "cases/toy/answer.yaml::answer[ollama-qwen2.5-coder-14b-p-r01]",
        "cases/toy/answer.yaml::answer[ollama-qwen2.5-coder-14b-p-r02]",
        "cases/toy/answer.yaml::answer[ollama-qwen2.5-coder-14b-np-r01]",
        "cases/toy/answer.yaml::answer[ollama-qwen2.5-coder-14b-np-r02]",
        "cases/toy/answer.yaml::answer[openai-gpt-4o-r01]",
        "cases/toy/answer.yaml::answer[openai-gpt-4o-r02]",
    ]
    picked = pytester.runpytest("cases", "--co", "-q", "--autopilot-llm", "ollama/qwen2.5-coder:14b@np",
                                "-k", "np-r01").stdout.lines
    assert [line for line in picked if "::" in line] == ["cases/toy/answer.yaml::answer[ollama-qwen2.5-coder-14b-np-r01]"]


def test_marker_selection_and_ini_precedence(toy_project, pytester):
    pytester.makeini("[pytest]\nautopilot_cases_dir = cases\nautopilot_runs = 3\n")
    from_ini = pytester.runpytest("cases", "--co", "-q", "-m", "dp and scripted")
    from_ini.stdout.fnmatch_lines(["*3 tests collected*"])
    from_cli = pytester.runpytest("cases", "--co", "-q", "--autopilot-runs", "1")  # CLI beats ini
    from_cli.stdout.fnmatch_lines(["*1 test collected*"])
    none = pytester.runpytest("cases", "--co", "-q", "-m", "mc")
    assert "3 deselected" in none.stdout.str()


@pytest.mark.parametrize("mutation, expected", [
    (lambda c: c.replace("stage: DP", "stage: XX"), "answer.yaml: field stage: unknown stage 'XX'; expected one of DP, MC"),
    (lambda c: c.replace("    prompt: toy/answer.j2", "    prompt: toy/missing.j2"),
     "answer.yaml: field steps.code.prompt: template 'toy/missing.j2' not found"),
    (lambda c: c.replace("repair: {max_attempts: 2}", "repair: {max_attempts: 0}"),
     "answer.yaml: field repair.max_attempts: Input should be greater than or equal to 1"),
    (lambda c: c + "colour: blue\n", "answer.yaml: field colour: unknown field; remove it or check its spelling"),
    (lambda c: c.replace("[bad_crash, bad_wrong]", "[bad_crash, bad_typo]"),
     "answer.yaml: field standin[2].code: 'bad_typo' is not a solution file stem"),
    (lambda c: c.replace("stage: DP\n", "stage: DP\n  oops: [\n"), "answer.yaml: line 2 is not valid YAML"),
])
def test_bad_case_file_fails_collection_with_one_line(toy_project, pytester, mutation, expected):
    case = toy_project / "cases/toy/answer.yaml"
    case.write_text(mutation(case.read_text()))
    result = pytester.runpytest("cases", "--co", "-q")
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # a collection error that does not stop the session
    output = result.stdout.str()
    assert expected in output
    assert "Traceback" not in output and "pydantic" not in output


def test_self_test_accepts_reference_and_rejects_bad(toy_project, pytester):
    result = pytester.runpytest("cases", "--autopilot-self-test", "-p", "no:xdist", "-v")
    result.assert_outcomes(passed=5)  # the bad_die variant is rejected in-process (no xdist worker)
    # an oracle that accepts a known-bad variant makes the self-test fail, naming it
    (toy_project / "cases/toy/answer/solutions/bad_wrong.py").write_text('open("out.txt", "w").write("42")\n')
    result = pytester.runpytest("cases", "--autopilot-self-test", "-p", "no:xdist")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(["*known-bad answer/solutions/bad_wrong.py ACCEPTED by the strict oracle*writes 41*"])


def test_scripted_sweep_records_then_replays_without_network(refuse_network, toy_project, pytester):
    recorded = pytester.runpytest("cases", "--autopilot-runs", "3", "--record-mode", "once",
                                             "--autopilot-run-id", "rec", "-p", "no:xdist")
    recorded.assert_outcomes(passed=2, failed=1)
    recorded.stdout.fnmatch_lines(["*autopilot summary*", "*scripted stand-in*"])
    cassettes = sorted(p.relative_to(toy_project).as_posix() for p in (toy_project / "cassettes").rglob("*.yaml"))
    assert cassettes == [f"cassettes/toy/answer/scripted-standin-r0{i}.yaml" for i in (1, 2, 3)]
    text = (toy_project / "cassettes/toy/answer/scripted-standin-r01.yaml").read_text()
    assert "scripted-standin-has-no-key" not in text and "Bearer" not in text  # auth header filtered
    rec = json.loads((toy_project / "reports/rec/results.json").read_text())
    runs = {r["repetition"]: r for r in rec["runs"]}
    assert [len(runs[i]["attempts"]) for i in (1, 2, 3)] == [2, 1, 2]
    assert runs[1]["attempts"][0]["category"] == "artifact_missing"
    assert "out.txt missing" in runs[1]["attempts"][1]["prompt"]  # the repair prompt carries the oracle's finding
    assert runs[3]["attempts"][0]["category"] == "runtime_error"
    assert all(r["scripted"] and r["model_id"] == "scripted-standin" for r in rec["runs"])

    # Replay: no socket may connect anywhere.
    refuse_network(toy_project)
    replayed = pytester.runpytest_subprocess("cases", "--autopilot-runs", "3", "--autopilot-run-id", "replay",
                                             "-p", "no:xdist", "--record-mode", "none")
    replayed.assert_outcomes(passed=2, failed=1)
    rep = json.loads((toy_project / "reports/replay/results.json").read_text())
    strip = lambda runs: [[(a["prompt_hash"], a["code"], a["category"]) for a in r["attempts"]] for r in runs]
    assert strip(rep["runs"]) == strip(rec["runs"])


def test_cassette_miss_is_one_clear_error(toy_project, pytester):
    pytester.runpytest("cases", "--record-mode", "once", "-p", "no:xdist").assert_outcomes(failed=0, passed=1)
    (toy_project / "prompts/toy/answer.j2").write_text("Write a Python program that writes {{ number }} to answer.txt.\n")
    result = pytester.runpytest("cases", "-p", "no:xdist")  # default mode once: existing cassette replays
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "cassette_miss: prompt changed since recording" in out
    assert "re-record with --record-mode" in out
    assert "Connection error" not in out and "Traceback" not in out


def test_missing_cassette_names_the_record_flag(toy_project, pytester):
    result = pytester.runpytest("cases", "-p", "no:xdist", "--record-mode", "none")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*cassette_miss*no cassette at */cassettes/toy/answer/scripted-standin-r01.yaml*--record-mode=once*"])


def test_xdist_merges_every_result(toy_project, pytester):
    result = pytester.runpytest_subprocess("cases", "-n", "2", "--autopilot-runs", "6", "--record-mode", "once",
                                           "--autopilot-run-id", "x")
    result.assert_outcomes(passed=4, failed=2)
    data = results(toy_project)
    assert data["complete"] is True
    assert len(data["runs"]) == 6
    assert {r["worker"] for r in data["runs"]} <= {"gw0", "gw1"}
    assert sorted(r["repetition"] for r in data["runs"]) == [1, 2, 3, 4, 5, 6]
    journals = list((toy_project / "reports/x/journal").glob("gw*.jsonl"))
    assert len(journals) == 2


def test_report_files_and_provenance(toy_project, pytester):
    pytester.runpytest("cases", "--autopilot-runs", "2", "--record-mode", "once",
                                  "--autopilot-run-id", "prov", "-p", "no:xdist")
    folder = toy_project / "reports/prov"
    for name in ("results.json", "runs.csv", "attempts.csv", "summary.csv", "summary.json"):
        assert (folder / name).is_file(), name
    summary = json.loads((folder / "summary.json").read_text())
    prov = summary["provenance"]
    assert prov["scripted_standin"] is True
    assert prov["models"]["scripted-standin"]["scripted"] is True
    assert set(prov["case_hashes"]["cases/toy/answer.yaml"]) == {str(toy_project / "cases/toy/answer.yaml"),
                                                                 "toy/answer.j2", "common/repair.j2"}
    assert prov["versions"]["litellm"].startswith("1.106")
    row = summary["summary"][0]
    assert row["runs"] == 2 and row["strict_successes"] == 2 and row["strict_ci_low"] < 1


def test_prompt_naming_a_missing_input_is_a_one_line_collection_error(toy_project, pytester):
    (toy_project / "prompts/toy/answer.j2").write_text("Write {{ number }} to {{ output_file }}.\n")
    result = pytester.runpytest("cases", "-p", "no:xdist")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*cases/toy/answer.yaml: field steps.code.prompt: template toy/answer.j2 uses "
                                 "{{ output_file }}, which the case's context does not give; add it to context*"])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize("policy, outcome", [("fail", {"failed": 1}), ("skip", {"skipped": 1})])
def test_missing_toolchain_fails_or_skips_only_that_case_with_install_hint(write_file, toy_project, pytester, policy, outcome):
    write_file(toy_project, "conftest.py", (toy_project / "conftest.py").read_text() + """
_toy_register = pytest_autopilot_register


def pytest_autopilot_register(registry):
    _toy_register(registry)
    registry.toolchain("quantum_sdk", lambda: False, "pip install quantum-sdk-example")
""")
    other = toy_project / "cases/toy/needs_sdk.yaml"
    other.write_text((toy_project / "cases/toy/answer.yaml").read_text().replace(
        "repair: {max_attempts: 2}", "repair: {max_attempts: 2}\nrequires: {toolchains: [python, quantum_sdk]}"))
    result = pytester.runpytest("cases", "-p", "no:xdist", "-k", "r01", "--record-mode", "once",
                                           "--autopilot-runs", "2", "--autopilot-missing-toolchain", policy, "-rs")
    result.assert_outcomes(passed=1, **outcome)  # the toy case without the requirement still passes
    result.stdout.fnmatch_lines(["*needs_sdk.yaml*toolchain 'quantum_sdk' is not installed; install it with: pip install quantum-sdk-example*"])
