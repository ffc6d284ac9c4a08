"""The litellm client against real local HTTP servers (test doubles of an OpenAI-compatible
provider and of Ollama): transient retries, errors, tokens, cost, truncation, extraction."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fake_provider import FakeProvider, openai_reply

from pytest_autopilot.core.errors import HarnessError
from pytest_autopilot.llm.client import LLMClient
from pytest_autopilot.llm.profiles import LLMSpec, resolve_llms
from pytest_autopilot.loop.extract import NoCode, extract_code, extract_json
from pytest_autopilot.loop.normalise import normalise_error

MESSAGES = [{"role": "user", "content": "Say hi"}]


@pytest.fixture
def provider(request):
    server = FakeProvider(request.param)
    yield server
    server.close()


def client(url, model="openai/local-model", retries=3, price=None, params=None):
    spec = LLMSpec(model, None, params or {}, url, None, price)
    return LLMClient(spec, timeout_s=10, retries=retries, api_base=url, backoff_s=0.01)


@pytest.mark.parametrize("provider", [[(429, {"error": {"message": "slow down"}}),
                                       (503, {"error": {"message": "overloaded"}}), openai_reply()]], indirect=True)
def test_transient_errors_are_retried_and_counted_apart(provider):
    answer = client(provider.url + "/v1")(MESSAGES, {})
    assert answer.text == "hi"
    assert answer.transient_retries == 2
    assert len(provider.bodies) == 3
    assert (answer.prompt_tokens, answer.completion_tokens, answer.total_tokens) == (10, 2, 12)
    assert answer.latency_s is not None and answer.latency_s > 0


@pytest.mark.parametrize("provider", [[(500, {"error": {"message": "down"}})]], indirect=True)
def test_persistent_5xx_becomes_llm_api_error_after_retries(provider):
    with pytest.raises(HarnessError) as err:
        client(provider.url + "/v1", retries=2)(MESSAGES, {})
    assert err.value.category == "llm_api_error"
    assert "after 2 transient retries" in str(err.value)
    assert len(provider.bodies) == 3


@pytest.mark.parametrize("provider", [[(401, {"error": {"message": "bad key"}})]], indirect=True)
def test_auth_error_is_not_retried(provider):
    with pytest.raises(HarnessError, match="not retried"):
        client(provider.url + "/v1")(MESSAGES, {})
    assert len(provider.bodies) == 1


@pytest.mark.parametrize("provider", [[openai_reply(prompt_tokens=1000, completion_tokens=500)]], indirect=True)
def test_cost_unknown_for_unmapped_model_and_from_price_table(provider):
    assert client(provider.url + "/v1")(MESSAGES, {}).cost_usd is None  # unknown, not 0, not a crash
    priced = client(provider.url + "/v1", price={"input_per_mtok": 2.0, "output_per_mtok": 10.0})
    assert priced(MESSAGES, {}).cost_usd == pytest.approx((1000 * 2 + 500 * 10) / 1e6)
    mapped = client(provider.url + "/v1", model="openai/gpt-4o")(MESSAGES, {})
    assert mapped.cost_usd is not None and mapped.cost_usd > 0  # litellm's local price map


def ollama_reply(prompt_eval_count):
    return 200, {"model": "tiny", "created_at": "2026-01-01T00:00:00Z", "done": True, "done_reason": "stop",
                 "message": {"role": "assistant", "content": "ok"},
                 "prompt_eval_count": prompt_eval_count, "eval_count": 3}


@pytest.mark.parametrize("provider", [[ollama_reply(64)]], indirect=True)
def test_ollama_context_is_set_explicitly_and_truncation_flagged(provider):
    spec = resolve_llms(["ollama_chat/tiny"], None)[0]
    assert spec.params["num_ctx"] == 8192  # never Ollama's silent 2048 default
    small = LLMSpec("ollama_chat/tiny", None, {"num_ctx": 64}, provider.url)
    long_prompt = [{"role": "user", "content": "word " * 400}]
    answer = LLMClient(small, timeout_s=10, retries=0, api_base=provider.url)(long_prompt, {})
    chat = [b for b in provider.bodies if "messages" in b]  # litellm may also ask /api/show for model info
    assert chat and chat[-1]["options"]["num_ctx"] == 64
    assert answer.truncated is True
    roomy = LLMSpec("ollama_chat/tiny", None, {"num_ctx": 8192}, provider.url)
    assert LLMClient(roomy, timeout_s=10, retries=0, api_base=provider.url)(MESSAGES, {}).truncated is False


def test_litellm_import_is_lazy_offline_and_ignores_dotenv(tmp_path):
    (tmp_path / ".env").write_text("AUTOPILOT_DOTENV_PROBE=leaked\n")
    code = ("import sys, socket, os\n"
            "def refuse(*a, **k): raise AssertionError('network at import')\n"
            "socket.socket.connect = refuse\n"
            "import pytest_autopilot.plugin, pytest_autopilot.llm.client\n"
            "assert 'litellm' not in sys.modules, 'plugin import pulled litellm'\n"
            "from pytest_autopilot.llm.client import import_litellm\n"
            "import_litellm()\n"
            "assert 'AUTOPILOT_DOTENV_PROBE' not in os.environ, '.env was loaded'\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"


def test_extraction_policies_never_rewrite_code():
    answer = "Intro\n```python\nprint(1)\n```\nand\n```py\nprint(22)\n```\n```bash\nls\n```"
    assert extract_code(answer, "python", "first").text == "print(1)\n"
    assert extract_code(answer, "python", "last").text == "print(22)\n"
    assert extract_code(answer, "python", "largest").text == "print(22)\n"
    assert "2 python blocks" in extract_code(answer, "python", "first").note
    with pytest.raises(NoCode, match="2 ```python blocks"):
        extract_code(answer, "python", "reject")
    with pytest.raises(NoCode, match="no ```python fenced block"):
        extract_code("I cannot do that.", "python")
    assert extract_code("```\nx = 1\n```", "python").note == "untagged fenced block used"
    assert extract_json('Plan:\n```json\n{"operations": [1]}\n```')[0] == {"operations": [1]}
    with pytest.raises(NoCode, match="invalid JSON"):
        extract_json("```json\n{oops}\n```")


def test_error_normalisation_is_stable_and_bounded():
    a = ('File "/tmp/pytest-autopilot-0/attempt-abc123/main.py", line 3\n'
         "2026-11-22 10:11:12,345 pid 4242 object at 0x7f3a2b4c5d60 t=1763805072.123\n")
    b = ('File "/tmp/pytest-autopilot-0/attempt-zz9/main.py", line 3\n'
         "2025-01-02 03:04:05,999 pid 77 object at 0x7f00aa00bb00 t=1700000000.9\n")
    assert normalise_error(a, 1000) == normalise_error(b, 1000)
    import sysconfig

    site = sysconfig.get_paths()["purelib"]
    assert normalise_error(f'File "{site}/tensorflow/lite/python/lite.py", line 9', 1000) == \
        'File "<SITE>/tensorflow/lite/python/lite.py", line 9'
    tf_a = "W0000 00:00:1763805072.123456   14748 file.cc:364] Took 98446 microseconds to load"
    tf_b = "W0000 00:00:1763805999.000001   20001 file.cc:364] Took 1203 microseconds to load"
    assert normalise_error(tf_a, 1000) == normalise_error(tf_b, 1000) == "W<LOGPREFIX> file.cc:364] Took <DURATION> to load"
    assert "<TMP>" in normalise_error(a, 1000) and "<ADDR>" in normalise_error(a, 1000)
    captures_a = "Captures:\n  139721197470736: TensorSpec(shape=(), dtype=tf.resource, name=None)"
    captures_b = "Captures:\n  139832652547088: TensorSpec(shape=(), dtype=tf.resource, name=None)"
    assert normalise_error(captures_a, 1000) == normalise_error(captures_b, 1000) == \
        "Captures:\n  <ID>: TensorSpec(shape=(), dtype=tf.resource, name=None)"
    long = "x" * 50 + "MIDDLE" * 1000 + "Traceback end: ValueError: the real error"
    bounded = normalise_error(long, 300)
    assert len(bounded) <= 300 and bounded.endswith("ValueError: the real error")
    assert "characters omitted" in bounded


def test_langfuse_tracing_only_with_keys_and_with_install_hint(monkeypatch):
    import importlib.util
    import types

    from pytest_autopilot.llm.client import _enable_langfuse

    fake = types.SimpleNamespace(success_callback=[], failure_callback=[])
    monkeypatch.delenv("LANGFUSE_PUBLIC_KEY", raising=False)
    _enable_langfuse(fake)
    assert fake.success_callback == []  # no keys: no tracing
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", "pk-lf-test")
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk-lf-test")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "langfuse" else real_find_spec(name, *a))
    with pytest.raises(ImportError, match="pip install langfuse"):
        _enable_langfuse(fake)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    _enable_langfuse(fake)
    _enable_langfuse(fake)  # idempotent: one callback per list
    assert fake.success_callback == ["langfuse"] and fake.failure_callback == ["langfuse"]
