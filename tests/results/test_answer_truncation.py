"""Cut answers in the tables (issue 22): every attempt's finish_reason and answer_truncated reach
attempts.csv and results.json, and the run's truncated_attempts counts them (it was always 0)."""

from __future__ import annotations

from pytest_autopilot.core.records import Attempt, Category, RunRecord, RunStatus
from pytest_autopilot.results.frames import attempts_frame, runs_frame


def _attempt(number: int, finish_reason: str | None, prompt_cut: bool | None = None) -> Attempt:
    return Attempt(step="code", item=None, number=number, prompt_hash=f"h{number}", prompt="p",
                   category=Category.ANSWER_TRUNCATED if finish_reason == "length" else Category.RUNTIME_ERROR,
                   finish_reason=finish_reason, answer_truncated=finish_reason == "length", truncated=prompt_cut)


def _run(attempts: list[Attempt]) -> RunRecord:
    return RunRecord(nodeid="cases/x.yaml::x[m-r01]", case="x", stage="DP", model_id="m", model="local/m", params={},
                     repetition=1, status=RunStatus.FAILURE, strict_success=False, legacy_success=False,
                     attempts=attempts)


def test_cut_answers_are_counted_per_run_and_listed_per_attempt():
    cut_twice = _run([_attempt(1, "length"), _attempt(2, "stop"), _attempt(3, "length")])
    prompt_cut = _run([_attempt(1, "stop", prompt_cut=True), _attempt(2, None)])
    runs = runs_frame([cut_twice, prompt_cut])
    assert runs["truncated_attempts"].tolist() == [2, 1]  # cut answers, and a prompt cut to fit the context
    attempts = attempts_frame([cut_twice, prompt_cut])
    assert attempts["finish_reason"].fillna("not reported").tolist() == ["length", "stop", "length", "stop", "not reported"]
    assert attempts["answer_truncated"].tolist() == [True, False, True, False, False]
    assert attempts["category"].tolist()[0] == "answer_truncated"


def test_results_json_keeps_finish_reason_and_the_flag():
    record = _run([_attempt(1, "length")])
    back = RunRecord.from_dict(record.to_dict())
    assert (back.attempts[0].finish_reason, back.attempts[0].answer_truncated) == ("length", True)
    old = record.to_dict()
    for key in ("finish_reason", "answer_truncated"):
        del old["attempts"][0][key]  # a journal written before these fields
    assert RunRecord.from_dict(old).attempts[0].answer_truncated is False


def test_the_written_report_and_show_name_the_cut_answer(tmp_path, capsys):
    import csv

    from pytest_autopilot import cli
    from pytest_autopilot.results import report

    report.write_report(tmp_path / "run", [_run([_attempt(1, "length"), _attempt(2, "stop")])], {"run_id": "run"})
    with (tmp_path / "run/attempts.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["finish_reason"], r["answer_truncated"]) for r in rows] == [("length", "True"), ("stop", "False")]
    assert cli.main(["show", str(tmp_path / "run"), "--run", "x[m-r01]"]) == 0
    out = capsys.readouterr().out
    assert "#1 code: answer_truncated" in out and "answer cut at the token limit" in out
