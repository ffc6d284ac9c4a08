"""The stand-in's injected API timing (for throughput benchmarks): a latency per answer, 429s with
Retry-After at a fixed rate, the same answers as without them, and one line for a bad setting."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pytest_autopilot.cases.spec import load_case
from pytest_autopilot.core.errors import HarnessError
from pytest_autopilot.llm.standin import InjectedDelay, StandinServer

ROOT = Path(__file__).parents[2]
HEADERS = {"X-Autopilot-Case": "clean_split", "X-Autopilot-Step-Key": "code", "X-Autopilot-Repetition": "2",
           "X-Autopilot-Attempt": "1", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def case():
    return load_case(ROOT / "cases/dp/clean_split.yaml", ROOT / "prompts")


def _ask(server: StandinServer) -> tuple[int, dict, dict, float]:
    """One chat completion: (status, body, headers, seconds taken)."""
    body = json.dumps({"model": "scripted-standin", "messages": [{"role": "user", "content": "x"}]}).encode()
    request = urllib.request.Request(server.url + "/chat/completions", body, HEADERS)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, json.loads(reply.read()), dict(reply.headers), time.monotonic() - started
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read()), dict(refused.headers), time.monotonic() - started


def test_latency_and_429s_change_the_timing_never_the_answer(case):
    plain = StandinServer({"clean_split": case}, InjectedDelay()).start()
    slow = StandinServer({"clean_split": case}, InjectedDelay(latency_s=0.3, jitter_s=0.1, rate_limit_every=2)).start()
    try:
        expected = _ask(plain)[1]
        first, second, third = _ask(slow), _ask(slow), _ask(slow)
    finally:
        plain.stop()
        slow.stop()
    assert first[0] == 200 and first[1] == expected and first[3] >= 0.3  # a lower bound: never a tight one
    assert second[0] == 429 and second[2]["Retry-After"] == "1" and "AUTOPILOT_STANDIN_429_EVERY" in str(second[1])
    assert third[0] == 200 and third[1] == expected


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("AUTOPILOT_STANDIN_LATENCY_S", "2")
    monkeypatch.setenv("AUTOPILOT_STANDIN_JITTER_S", "0.5")
    monkeypatch.setenv("AUTOPILOT_STANDIN_429_EVERY", "10")
    assert InjectedDelay.from_env() == InjectedDelay(2.0, 0.5, 10)
    monkeypatch.delenv("AUTOPILOT_STANDIN_429_EVERY")
    assert InjectedDelay.from_env().rate_limit_every == 0


@pytest.mark.parametrize("name,value", [("AUTOPILOT_STANDIN_LATENCY_S", "fast"), ("AUTOPILOT_STANDIN_JITTER_S", "-1"),
                                        ("AUTOPILOT_STANDIN_429_EVERY", "0.5")])
def test_a_bad_setting_is_one_line_naming_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(HarnessError) as caught:
        InjectedDelay.from_env()
    message = str(caught.value)
    assert name in message and "fix or unset it" in message and "\n" not in message
