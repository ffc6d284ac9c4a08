"""Retries of transient LLM errors wait a jittered backoff, so workers refused at the same moment
do not come back in lockstep, and honour the server's Retry-After, read through litellm."""

from __future__ import annotations

import random
import time
import types
from email.utils import formatdate

import pytest
from fake_provider import FakeProvider, openai_reply

from pytest_autopilot.llm import client as client_module
from pytest_autopilot.llm.client import MAX_BACKOFF_S, MAX_RETRY_AFTER_S, LLMClient, retry_after_s, retry_delay
from pytest_autopilot.llm.profiles import LLMSpec


def test_full_jitter_stays_under_the_exponential_bound_and_spreads_workers():
    rng = random.Random(7)
    for retries in range(1, 10):
        bound = min(2.0 * 2 ** (retries - 1), MAX_BACKOFF_S)
        delays = [retry_delay(retries, 2.0, None, rng) for _ in range(200)]
        assert all(0 <= d <= bound for d in delays)
        assert max(delays) > 0.8 * bound and min(delays) < 0.2 * bound  # spread over the whole range
    workers = [[retry_delay(1, 1.0, None, random.Random(seed)) for _ in range(3)] for seed in range(8)]
    assert len({tuple(w) for w in workers}) == 8  # eight workers refused together come back at eight moments
    assert workers[3] == [retry_delay(1, 1.0, None, random.Random(3)) for _ in range(3)]  # reproducible


def test_retry_after_is_waited_first_with_the_jitter_on_top():
    rng = random.Random(1)
    delays = [retry_delay(2, 1.0, 5.0, rng) for _ in range(100)]
    assert all(5.0 <= d <= 7.0 for d in delays) and len(set(delays)) > 1
    assert retry_delay(1, 1.0, 10 * MAX_RETRY_AFTER_S, rng) <= MAX_RETRY_AFTER_S + 1.0


IN_20_S = "an HTTP date 20 s from now"


@pytest.mark.parametrize("headers, expected", [
    ({"Retry-After": "3"}, 3.0),
    ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
    ({"Retry-After": IN_20_S}, 20.0),
    ({"Retry-After": "soon"}, None),
    ({}, None),
])
def test_retry_after_forms(headers, expected):
    if headers.get("Retry-After") == IN_20_S:  # made here: collection may be long before the test runs
        headers = {"Retry-After": formatdate(time.time() + 20, usegmt=True)}
    exc = types.SimpleNamespace(response=types.SimpleNamespace(headers=headers))
    seconds = retry_after_s(exc)
    assert seconds == (None if expected is None else pytest.approx(expected, abs=2))


@pytest.fixture
def rate_limited():
    """A provider answering 429 with a Retry-After header once, then a completion."""
    server = FakeProvider([(429, {"error": {"message": "slow down"}}, {"Retry-After": "4"}), openai_reply()])
    yield server
    server.close()


def test_a_429_waits_the_servers_retry_after_plus_seeded_jitter(rate_limited, monkeypatch):
    slept = []
    monkeypatch.setattr(client_module, "time", types.SimpleNamespace(sleep=slept.append, time=time.time,
                                                                     perf_counter=time.perf_counter))
    spec = LLMSpec("openai/local-model", None, {}, rate_limited.url + "/v1", None, None)
    llm = LLMClient(spec, timeout_s=10, retries=2, api_base=rate_limited.url + "/v1", backoff_s=0.5, rng=random.Random(42))
    answer = llm([{"role": "user", "content": "Say hi"}], {})
    assert answer.text == "hi" and answer.transient_retries == 1
    assert slept == [pytest.approx(4.0 + random.Random(42).uniform(0.0, 0.5))]
