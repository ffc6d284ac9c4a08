"""finish_reason is read from every response (issue 22): recorded real-model responses, served
again over real HTTP, come back flagged cut exactly where the model stopped at the token limit.
The expectation is read from each recording's own finish_reason. The issue's example (all five
answers of a conversation cut at 1024 tokens) is kept under data/ as it was recorded, since its
cassette is re-recorded with the new max_tokens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from fake_provider import FakeProvider

from pytest_autopilot.llm.client import LLMClient
from pytest_autopilot.llm.profiles import LLMSpec

ROOT = Path(__file__).resolve().parents[2]
ALL_CUT = Path(__file__).parent / "data/clean_split-0.5b-conversation-r01-responses.json"


def _responses(path: Path) -> list[dict]:
    interactions = yaml.safe_load(path.read_text())["interactions"]
    return [json.loads(i["response"]["body"]["string"]) for i in interactions if i["response"]["status"]["code"] == 200]


def _local_cassettes() -> list[Path]:
    return sorted((ROOT / "cassettes").rglob("local-*.yaml"))


def _served_answers(responses: list[dict]):
    server = FakeProvider([(200, r) for r in responses])
    try:
        spec = LLMSpec("openai/qwen2.5-coder-0.5b", None, {"max_tokens": 1024}, server.url)
        client = LLMClient(spec, timeout_s=30, retries=0, api_base=server.url)
        return [client([{"role": "user", "content": "task"}], {"attempt": 1}) for _ in responses]
    finally:
        server.close()


def test_every_answer_of_the_issues_example_is_reported_cut():
    responses = json.loads(ALL_CUT.read_text())["responses"]
    assert [r["choices"][0]["finish_reason"] for r in responses] == ["length"] * 5  # what the cassette recorded
    answers = _served_answers(responses)
    assert [(a.finish_reason, a.cut, a.completion_tokens) for a in answers] == [("length", True, 1024)] * 5


@pytest.mark.skipif(not _local_cassettes(), reason="no real-model cassettes committed")
def test_the_committed_real_model_cassettes_report_their_cut_answers():
    responses = [r for path in _local_cassettes() for r in _responses(path)]
    recorded = [r["choices"][0]["finish_reason"] for r in responses]
    answers = _served_answers(responses)
    assert [a.finish_reason for a in answers] == recorded
    assert sum(a.cut for a in answers) == recorded.count("length")
    print(f"{len(answers)} recorded answers, {recorded.count('length')} cut at the token limit")
