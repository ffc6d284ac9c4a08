"""The LLM client: litellm behind a small, instrumented call.

litellm is imported lazily and tamed first: no cost-map download at import, no ``.env``
loading, no banner. Transient errors (rate limit, 5xx, connection) are retried here and
counted apart from repair attempts; a cassette miss is turned into one clear error
(``llm.cassettes.cassette_miss``).
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

from pytest_autopilot.core.errors import HarnessError
from pytest_autopilot.core.records import Answer, Category
from pytest_autopilot.core.util import finite
from pytest_autopilot.llm.cassettes import cassette_miss
from pytest_autopilot.llm.profiles import LLMSpec

INSTALL_HINT = 'pip install "litellm==1.106.*"'
STANDIN_LITELLM_MODEL = "openai/scripted-standin"
HUMAN_ANSWER_HEADER = "X-Autopilot-Answer-File"  # llm.human's server reads the answer from this file
TRUNCATION_MARGIN = 0.98  # prompt tokens at ≥98% of num_ctx: Ollama cut the front of the prompt
MAX_BACKOFF_S = 30.0  # the longest jittered wait before a retry
MAX_RETRY_AFTER_S = 120.0  # a server's Retry-After is honoured up to this; a longer one is a quota, not a hiccup


def import_litellm():
    """Import litellm offline-safe, or fail with the install command."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch at import
    os.environ.setdefault("LITELLM_MODE", "PRODUCTION")  # do not read .env files
    try:
        import litellm
    except ImportError:
        raise ImportError(f"litellm is not installed; install it with: {INSTALL_HINT}") from None
    litellm.suppress_debug_info = True
    litellm.telemetry = False
    _enable_langfuse(litellm)
    return litellm


def _enable_langfuse(litellm) -> None:
    """Trace through litellm's Langfuse callback when its keys are set (as the paper did)."""
    if not (os.environ.get("LANGFUSE_PUBLIC_KEY") and os.environ.get("LANGFUSE_SECRET_KEY")):
        return
    import importlib.util

    if importlib.util.find_spec("langfuse") is None:
        raise ImportError("LANGFUSE_* keys are set but langfuse is not installed; install it with: pip install langfuse")
    for attr in ("success_callback", "failure_callback"):
        callbacks = getattr(litellm, attr)
        if "langfuse" not in callbacks:
            callbacks.append("langfuse")


def _transient_errors(litellm) -> tuple[type[BaseException], ...]:
    return (litellm.RateLimitError, litellm.InternalServerError, litellm.ServiceUnavailableError,
            litellm.APIConnectionError, litellm.Timeout, litellm.BadGatewayError)


def _context_exceeded(exc: BaseException) -> bool:
    """The server refused a prompt longer than its context (llama.cpp's OpenAI-style 400)."""
    return type(exc).__name__ == "ContextWindowExceededError" or "context_length_exceeded" in str(exc) \
        or "maximum context length" in str(exc)


def retry_delay(retries: int, backoff_s: float, retry_after: float | None, rng: random.Random) -> float:
    """Seconds before retry number ``retries``: full jitter, uniform in [0, backoff_s * 2^(retries-1)] (at most
    ``MAX_BACKOFF_S``), so workers refused at the same moment do not retry in lockstep; a server's Retry-After
    is waited first, the jitter on top."""
    jittered = rng.uniform(0.0, min(backoff_s * 2 ** (retries - 1), MAX_BACKOFF_S))
    return jittered if retry_after is None else min(retry_after, MAX_RETRY_AFTER_S) + jittered


def retry_after_s(exc: BaseException) -> float | None:
    """The Retry-After of the response behind litellm's exception (``retry-after-ms``, or seconds, or an
    HTTP date), or None when the server sent none."""
    headers = getattr(exc, "litellm_response_headers", None) or getattr(getattr(exc, "response", None), "headers", None)
    named = {str(k).lower(): str(v) for k, v in headers.items()} if hasattr(headers, "items") else {}
    milliseconds = finite(named.get("retry-after-ms"))
    if milliseconds is not None:
        return max(milliseconds / 1000, 0.0)
    value = named.get("retry-after")
    if value is None:
        return None
    seconds = finite(value)
    if seconds is None:
        from email.utils import parsedate_to_datetime

        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return max(seconds, 0.0)


class LLMClient:
    """Calls one model with one parameter profile; one instance per run."""

    def __init__(self, spec: LLMSpec, *, timeout_s: float, retries: int, api_base: str | None = None,
                 meta: dict[str, Any] | None = None, cassette: str | None = None, backoff_s: float = 1.0,
                 repetition: int = 0, rng: random.Random | None = None):
        self.spec = spec
        self.repetition = repetition
        self.timeout_s = timeout_s
        self.retries = retries
        self.api_base = api_base or spec.api_base
        self.meta = meta or {}  # scripted stand-in only: which case/repetition is asking
        self.cassette = cassette
        self.backoff_s = backoff_s
        self.rng = rng or random.Random()  # each worker its own sequence: their retries spread apart
        self._litellm = import_litellm()

    def _request(self, messages: list[dict[str, str]], meta: dict[str, Any]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"model": self.spec.model, "messages": messages, "timeout": self.timeout_s,
                                  "max_retries": 0, "num_retries": 0, **self.spec.params}
        seed = self.spec.seed_for(self.repetition, int(meta.get("attempt", 1)))
        if seed is not None:
            kwargs["seed"] = seed
        if self.spec.is_local:  # the plugin's llama.cpp server speaks the OpenAI API
            kwargs["model"] = "openai/" + self.spec.local_alias
            kwargs["api_key"] = "local-server-has-no-key"
        if self.spec.scripted:
            kwargs["model"] = STANDIN_LITELLM_MODEL
            kwargs["api_key"] = "scripted-standin-has-no-key"
            # the stand-in picks its scripted answer from these; they are not matched on replay
            kwargs["extra_headers"] = {f"X-Autopilot-{k.replace('_', '-')}": str(v)
                                       for k, v in {**self.meta, **meta}.items()}
        if self.spec.is_human:  # the loopback server of llm.human passes on the person's answer file
            kwargs["model"] = "openai/" + self.spec.id
            kwargs["api_key"] = "human-baseline-has-no-key"
            if "answer_file" in meta:
                kwargs["extra_headers"] = {HUMAN_ANSWER_HEADER: meta["answer_file"]}
        if self.api_base:
            kwargs["api_base"] = self.api_base
        if self.spec.api_key_env:
            key = os.environ.get(self.spec.api_key_env)
            if not key:
                raise HarnessError(Category.LLM_API_ERROR, f"models file names api_key_env {self.spec.api_key_env} for "
                                   f"{self.spec.model}, but that environment variable is empty; export it")
            kwargs["api_key"] = key
        elif self.api_base and self.spec.model.startswith("openai/") and "api_key" not in kwargs \
                and not os.environ.get("OPENAI_API_KEY"):
            kwargs["api_key"] = "no-key-needed"  # local OpenAI-compatible servers often take none
        return kwargs

    def __call__(self, messages: list[dict[str, str]], meta: dict[str, Any]) -> Answer:
        litellm = self._litellm
        kwargs = self._request(messages, meta)
        transient = _transient_errors(litellm)
        retries = 0
        while True:
            started = time.perf_counter()
            try:
                response = litellm.completion(**kwargs)
                break
            except Exception as exc:  # classified below; anything else is an API error
                miss = cassette_miss(exc, self.cassette)
                if miss is not None:
                    raise miss from None
                if _context_exceeded(exc):
                    raise HarnessError(Category.CONTEXT_TRUNCATED, self._too_long(messages, exc)) from None
                if isinstance(exc, transient) and retries < self.retries:
                    retries += 1
                    time.sleep(retry_delay(retries, self.backoff_s, retry_after_s(exc), self.rng))
                    continue
                kind = "after %d transient retries" % retries if isinstance(exc, transient) else "(not retried)"
                raise HarnessError(Category.LLM_API_ERROR,
                                   f"LLM API error {kind}: {type(exc).__name__}: {str(exc)[:300]}") from None
        latency = time.perf_counter() - started
        usage = getattr(response, "usage", None)
        prompt_tokens = getattr(usage, "prompt_tokens", None)
        completion_tokens = getattr(usage, "completion_tokens", None)
        total = getattr(usage, "total_tokens", None)
        choice = response.choices[0]
        text = choice.message.content or ""
        return Answer(text, prompt_tokens, completion_tokens, total, self._cost(response, prompt_tokens, completion_tokens),
                      latency, retries, self._truncated(messages, prompt_tokens),
                      finish_reason=getattr(choice, "finish_reason", None), max_tokens=self.spec.params.get("max_tokens"))

    def _too_long(self, messages, exc: BaseException) -> str:
        chars = sum(len(m["content"]) for m in messages)
        where = f"the model's context ({self.spec.context_window} tokens)" if self.spec.context_window else "the model's context"
        return (f"prompt of {chars} characters does not fit {where}; nothing was cut: raise context_window for "
                f"{self.spec.model} in the models file or shorten the prompt ({str(exc)[:160]})")

    def _cost(self, response, prompt_tokens: int | None, completion_tokens: int | None) -> float | None:
        """litellm's price map, else the models file's price table, else unknown (None)."""
        if self.spec.scripted or self.spec.is_local or self.spec.is_human:
            return 0.0  # nothing was paid: no model ran, or it ran on this machine, or a person answered
        if self.spec.price is not None and prompt_tokens is not None and completion_tokens is not None:
            return (prompt_tokens * self.spec.price["input_per_mtok"]
                    + completion_tokens * self.spec.price["output_per_mtok"]) / 1e6
        try:
            return float(self._litellm.completion_cost(completion_response=response, model=self.spec.model))
        except Exception:  # litellm raises for unmapped models; cost stays unknown, never a crash
            return None

    def _truncated(self, messages: list[dict[str, str]], prompt_tokens: int | None) -> bool | None:
        """Ollama silently drops the front of a prompt longer than num_ctx: flag it."""
        num_ctx = self.spec.params.get("num_ctx")
        if not num_ctx:
            return None
        try:
            estimate = self._litellm.token_counter(model=self.spec.model, messages=messages)
        except Exception:
            estimate = None
        if estimate is not None and estimate > num_ctx:
            return True
        if prompt_tokens is not None:
            return prompt_tokens >= TRUNCATION_MARGIN * num_ctx
        return None if estimate is None else False
