"""The human baseline's parts: the answer-file wait, the request file, the loopback server, the model id."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from pytest_autopilot.llm import human
from pytest_autopilot.llm.client import HUMAN_ANSWER_HEADER
from pytest_autopilot.llm.profiles import LLMConfigError, resolve_llms


def test_human_model_string_gives_a_labelled_spec_and_an_empty_name_is_one_line():
    (spec,) = resolve_llms(["human/ann"], None)
    assert spec.is_human and not spec.scripted and not spec.is_local and spec.id == "human-ann"
    with pytest.raises(LLMConfigError, match="name the person answering, e.g. human/ann"):
        resolve_llms(["human/"], None)


def test_no_answer_within_the_timeout_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "answer-01.md"
    with pytest.raises(human.HumanTimeout) as raised:
        human.wait_for_answer(path, timeout_s=0.3, poll_s=0.05)
    message = str(raised.value)
    assert "\n" not in message and str(path) in message and "--autopilot-human-timeout" in message
    assert raised.value.category == "llm_api_error"


def test_an_answer_still_being_written_is_read_only_once_it_stops_changing(tmp_path, monkeypatch):
    path = tmp_path / "answer-01.md"
    path.write_text("first half, ")
    polls = []

    def editor_still_saving(seconds):  # between the first two looks the editor appends the rest
        polls.append(seconds)
        if len(polls) == 1:
            with open(path, "a") as fh:
                fh.write("second half")

    monkeypatch.setattr(human.time, "sleep", editor_still_saving)
    assert human.wait_for_answer(path, timeout_s=60) == "first half, second half"
    assert len(polls) == 2  # seen, changed, then unchanged: read


def test_request_file_holds_every_message_and_the_protocol():
    messages = [{"role": "user", "content": "Write 42 to out.txt."},
                {"role": "assistant", "content": "```python\nprint(1)\n```"},
                {"role": "user", "content": "out.txt missing; fix it."}]
    text = human.request_text(messages, {"step_key": "code", "attempt": 2}, 2, "answer-02.md", "cases/x.yaml::x[h]", 60)
    assert "Step code, attempt 2" in text and "answer-02.md" in text and "mv draft.md answer-02.md" in text
    assert "do not look at the case's solutions" in text
    for index, message in enumerate(messages, start=1):
        assert f"message {index} of 3, role: {message['role']}" in text and message["content"] in text


def _post(url: str, answer_file: str) -> tuple[int, dict]:
    body = json.dumps({"model": "human-ann", "messages": [{"role": "user", "content": "hi"}]}).encode()
    request = urllib.request.Request(url + "/chat/completions", body, {"Content-Type": "application/json",
                                                                       HUMAN_ANSWER_HEADER: answer_file})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_server_serves_answer_files_under_its_folder_only(tmp_path):
    root = tmp_path / "human"
    (root / "case/run").mkdir(parents=True)
    (root / "case/run/answer-01.md").write_text("```python\nprint(42)\n```\n")
    (tmp_path / "secret.txt").write_text("not an answer")
    server = human.HumanServer(root).start()
    try:
        status, data = _post(server.url, "case/run/answer-01.md")
        assert status == 200 and data["choices"][0]["message"]["content"] == "```python\nprint(42)\n```\n"
        assert data["model"] == "human-ann"
        for outside in ("../secret.txt", str(tmp_path / "secret.txt"), "case/run/answer-02.md"):
            status, data = _post(server.url, outside)
            assert status == 400 and "no answer file" in data["error"]["message"], outside
    finally:
        server.close()
