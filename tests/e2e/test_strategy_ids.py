"""The repair strategy is a dimension of the sweep: each strategy its own test id, chosen by the
command line / ini > the models-file profile > the case > stateless."""

from __future__ import annotations


def _ids(pytester, *args) -> list[str]:
    result = pytester.runpytest("cases", "--co", "-q", "--autopilot-runs", "1", *args)
    return sorted(line.split("::")[1] for line in result.stdout.lines if "::" in line)


def test_each_strategy_is_its_own_id_and_stateless_keeps_the_old_one(toy_project, pytester):
    assert _ids(pytester) == ["answer[scripted-standin-r01]"]
    assert _ids(pytester, "--autopilot-repair-strategy", "stateless", "--autopilot-repair-strategy", "conversation",
                "--autopilot-repair-strategy", "resample") == [
        "answer[scripted-standin-conversation-r01]", "answer[scripted-standin-r01]",
        "answer[scripted-standin-resample-r01]"]


def test_precedence_command_line_then_profile_then_case(toy_project, pytester, write_file):
    case = toy_project / "cases/toy/answer.yaml"
    case.write_text(case.read_text().replace("repair: {max_attempts: 2}", "repair: {max_attempts: 2, strategy: [resample]}"))
    assert _ids(pytester) == ["answer[scripted-standin-resample-r01]"]
    write_file(toy_project, "autopilot-models.yaml", """\
        models:
          scripted/standin:
            profiles:
              chat: {strategy: [conversation]}
        """)
    assert _ids(pytester) == ["answer[scripted-standin-chat-conversation-r01]"]
    assert _ids(pytester, "--autopilot-repair-strategy", "stateless") == ["answer[scripted-standin-chat-r01]"]


def test_an_unknown_strategy_is_one_line(toy_project, pytester):
    result = pytester.runpytest("cases", "--co", "-q", "--autopilot-repair-strategy", "telepathy")
    result.stdout.fnmatch_lines(["*answer.yaml: repair strategy 'telepathy'*unknown repair strategy 'telepathy'; known: conversation, resample, stateless*"])
    pytester.makeini("[pytest]\nautopilot_cases_dir = cases\nautopilot_repair_strategy = telepathy\n")
    result = pytester.runpytest("cases", "--co", "-q")
    result.stdout.fnmatch_lines(["*answer.yaml: repair strategy 'telepathy'*unknown repair strategy 'telepathy'; known: conversation, resample, stateless*"])


def test_recorded_only_keeps_exactly_the_runs_that_have_a_cassette(toy_project, pytester):
    """The main job's mode: replay whatever mix of models, strategies and repetitions was recorded."""
    folder = toy_project / "cassettes/toy/answer"
    folder.mkdir(parents=True)
    for name in ("scripted-standin-r01", "scripted-standin-conversation-r02"):
        (folder / f"{name}.yaml").write_text("interactions: []\nversion: 1\n")
    args = ("--autopilot-runs", "3", "--autopilot-repair-strategy", "stateless",
            "--autopilot-repair-strategy", "conversation", "--autopilot-recorded-only")
    assert _ids(pytester, *args[2:]) == ["answer[scripted-standin-r01]"]
    result = pytester.runpytest("cases", "--co", "-q", *args)
    ids = sorted(line.split("::")[1] for line in result.stdout.lines if "::" in line)
    assert ids == ["answer[scripted-standin-conversation-r02]", "answer[scripted-standin-r01]"]
    result.stdout.fnmatch_lines(["*2/6 tests collected (4 deselected)*"])
