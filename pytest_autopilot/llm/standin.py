"""The scripted stand-in: a real, local OpenAI-compatible HTTP endpoint that answers with a
case's stored reference and known-bad solutions in the order its ``standin`` field scripts.

It is not an LLM and is labelled so everywhere (model id ``scripted-standin``, cassette
names, reports). It exists so the offline sweep exercises the whole loop, repairs included.
Run it by hand with ``python -m pytest_autopilot.llm.standin cases/`` to point another tool at it.

For throughput benchmarks it can answer like a remote API: ``AUTOPILOT_STANDIN_LATENCY_S``
(seconds per answer), ``AUTOPILOT_STANDIN_JITTER_S`` (plus up to this much, uniformly) and
``AUTOPILOT_STANDIN_429_EVERY`` (every Nth request is refused with 429 and ``Retry-After: 1``).
They change how long answers take, never what they say.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from pytest_autopilot.cases.spec import Case
from pytest_autopilot.core.errors import HarnessError
from pytest_autopilot.core.records import Category

FENCE_LANG = {".py": "python", ".json": "json", ".ino": "cpp", ".cpp": "cpp", ".c": "c", ".h": "c"}


def answer_text(path: Path) -> str:
    """A stored solution as an LLM-style answer: ``.md`` files verbatim, code fenced."""
    body = path.read_text(encoding="utf-8")
    if path.suffix == ".md":
        return body
    lang = FENCE_LANG.get(path.suffix, "")
    return f"Here is the solution.\n\n```{lang}\n{body.rstrip()}\n```\n"


def solution_for(case: Case, step_key: str, name: str) -> Path:
    """Resolve a solution stem for a step key (``operations/split`` falls back to ``operations``)."""
    sols = case.spec.solutions
    keys = [step_key, step_key.split("/")[0]] if "/" in step_key else [step_key]
    for key in keys:
        if name == "reference" and key in sols.reference:
            return case.solution_path(sols.reference[key])
        for other in (*sols.also_good.get(key, []), *sols.bad.get(key, [])):
            if Path(other.file).stem == name:
                return case.solution_path(other.file)
    raise LookupError(f"{case.path}: no solution {name!r} for step {step_key!r}")


def scripted_solution(case: Case, step_key: str, repetition: int, attempt: int) -> Path:
    script = case.spec.standin[(repetition - 1) % len(case.spec.standin)]
    names = script.get(step_key) or script.get(step_key.split("/")[0]) or ["reference"]
    return solution_for(case, step_key, names[min(attempt, len(names)) - 1])


def completion(text: str, answer_id: str, model: str, request: dict) -> dict:
    """An OpenAI chat completion answering ``request`` with ``text``. No tokenizer ran: the
    token counts are estimates (4 characters a token)."""
    prompt_chars = sum(len(m.get("content") or "") for m in request.get("messages", []))
    prompt_tokens, completion_tokens = max(1, prompt_chars // 4), max(1, len(text) // 4)
    return {
        "id": answer_id, "object": "chat.completion", "created": 0, "model": model, "system_fingerprint": model,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


@dataclass(frozen=True)
class InjectedDelay:
    """How the stand-in imitates a remote API's timing (all off by default)."""

    latency_s: float = 0.0
    jitter_s: float = 0.0
    rate_limit_every: int = 0  # every Nth request answered 429 (0: never)

    @classmethod
    def from_env(cls) -> "InjectedDelay":
        return cls(_env_number("AUTOPILOT_STANDIN_LATENCY_S", float), _env_number("AUTOPILOT_STANDIN_JITTER_S", float),
                   _env_number("AUTOPILOT_STANDIN_429_EVERY", int))


def _env_number(name: str, kind: type) -> float:
    text = os.environ.get(name, "").strip()
    try:
        value = kind(text) if text else 0
    except ValueError:
        value = -1
    if value < 0:
        raise HarnessError(Category.HARNESS_ERROR, f"{name}={text!r}: expected a {kind.__name__} >= 0; fix or unset it")
    return value


class StandinServer:
    """Threaded HTTP server on 127.0.0.1 (port chosen by the OS), one per process."""

    def __init__(self, cases: dict[str, Case], delay: InjectedDelay | None = None):
        self.cases = cases
        self.delay = delay if delay is not None else InjectedDelay.from_env()
        self._requests = 0
        self._count_lock = threading.Lock()
        self._rng = random.Random()
        handler = type("Handler", (_Handler,), {"standin": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="autopilot-standin", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> "StandinServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def refused(self) -> bool:
        """Whether this request is one of the injected 429s (counted across the server's threads)."""
        with self._count_lock:
            self._requests += 1
            return bool(self.delay.rate_limit_every) and self._requests % self.delay.rate_limit_every == 0

    def wait(self) -> None:
        if self.delay.latency_s or self.delay.jitter_s:
            time.sleep(self.delay.latency_s + self._rng.uniform(0.0, self.delay.jitter_s))

    def respond(self, headers, body: dict) -> tuple[int, dict]:
        try:
            case = self.cases[headers["X-Autopilot-Case"]]
            path = scripted_solution(case, headers["X-Autopilot-Step-Key"],
                                     int(headers["X-Autopilot-Repetition"]), int(headers["X-Autopilot-Attempt"]))
        except (KeyError, TypeError, ValueError, LookupError) as exc:
            return 400, {"error": {"message": f"scripted stand-in cannot answer: {exc}", "type": "invalid_request_error"}}
        return 200, completion(answer_text(path), "scripted-" + path.stem, "scripted-standin", body)


class _Handler(BaseHTTPRequestHandler):
    standin: StandinServer

    def do_POST(self):  # noqa: N802 (http.server naming)
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            status, payload = 400, {"error": {"message": "body is not JSON"}}
        else:
            if not self.path.rstrip("/").endswith("/chat/completions"):
                status, payload = 404, {"error": {"message": f"only /v1/chat/completions is served, not {self.path}"}}
            elif self.standin.refused():
                status, payload = 429, {"error": {"message": "injected rate limit (AUTOPILOT_STANDIN_429_EVERY)",
                                                  "type": "rate_limit_error"}}
            else:
                self.standin.wait()
                status, payload = self.standin.respond(self.headers, body)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if status == 429:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):  # keep test output clean
        pass


def main(argv: list[str] | None = None) -> None:
    import argparse

    from pytest_autopilot.cases.spec import load_case

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases_dir", type=Path)
    parser.add_argument("--prompts-dir", type=Path, default=Path("prompts"))
    args = parser.parse_args(argv)
    cases = {str(p): load_case(p, args.prompts_dir) for p in sorted(args.cases_dir.rglob("*.yaml"))
             if not {"assets", "solutions"} & set(p.parts)}
    server = StandinServer(cases).start()
    print(f"scripted stand-in (not an LLM) at {server.url}; cases: {', '.join(cases)}", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
