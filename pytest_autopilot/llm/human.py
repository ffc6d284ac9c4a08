"""The human baseline: ``--autopilot-llm human/<name>`` runs the real repair loop with a person
as the model (as inspect_ai's human agent does). It is not an LLM and is labelled so everywhere.

The protocol, per run, in ``<report folder>/human/<case>/<variant>/``:

1. the harness writes ``request-NN.md`` (NN = 01, 02, ... in the order the run asks), holding
   the messages a model would get, and prints its path on the terminal;
2. the person writes the whole answer, as a model would (code in a fenced block), to
   ``answer-NN.md`` beside it, atomically: write another name, then rename it
   (``mv draft.md answer-01.md``); a file still growing is waited for, not read half-written;
3. the run goes on with that answer; with no answer within ``--autopilot-human-timeout``
   seconds (default one hour) the run stops with one line saying so. Ctrl+C stops the session.

Answers are recorded like any model's: the answer travels through a loopback OpenAI-compatible
server (:class:`HumanServer`) that litellm calls, so vcrpy writes the cassette
``cassettes/<case>/human-<name>-rNN.yaml``, which replays offline (``--record-mode=none``)
without the person.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any, Callable

from pytest_autopilot.core.errors import HarnessError
from pytest_autopilot.core.records import Answer, Category
from pytest_autopilot.core.util import atomic_write
from pytest_autopilot.llm.client import HUMAN_ANSWER_HEADER
from pytest_autopilot.llm.standin import InjectedDelay, StandinServer, completion

POLL_S = 0.25


class HumanTimeout(HarnessError):
    def __init__(self, message: str):
        super().__init__(Category.LLM_API_ERROR, message)


def request_text(messages: list[dict[str, str]], meta: dict[str, Any], number: int, answer_name: str,
                 run: str, timeout_s: float) -> str:
    """What the person reads: how to answer, then every message exactly as a model gets it."""
    head = [
        f"# Human baseline request {number:02d}: {run}",
        "",
        f"Step {meta.get('step_key', '?')}, attempt {meta.get('attempt', '?')}. Answer as the model would: "
        "the whole answer, with the code in one fenced block.",
        f"Write it to {answer_name} in this folder, atomically (write another name, then rename it: "
        f"mv draft.md {answer_name}). The run waits {timeout_s:g} s for it; Ctrl+C stops the session.",
        "Answer from these messages only: do not look at the case's solutions, oracles or cassettes.",
        "",
    ]
    for index, message in enumerate(messages, start=1):
        head += [f"======== message {index} of {len(messages)}, role: {message['role']} ========", "",
                 message["content"], ""]
    return "\n".join(head)


def wait_for_answer(path: Path, timeout_s: float, poll_s: float = POLL_S, shown: str | None = None) -> str:
    """The answer file's text once it exists and has stopped changing (an editor saving in place
    is not read half-written); :class:`HumanTimeout` after ``timeout_s``. Sleeping in small steps
    keeps Ctrl+C prompt."""
    deadline = time.monotonic() + timeout_s
    seen = None
    while time.monotonic() < deadline:
        try:
            stat = path.stat()
        except FileNotFoundError:
            seen = None
        else:
            now = (stat.st_size, stat.st_mtime_ns)
            if now == seen:
                return path.read_text(encoding="utf-8", errors="replace")
            seen = now
        time.sleep(poll_s)
    raise HumanTimeout(f"human baseline: no answer at {shown or path} within {timeout_s:g} s; the run stops "
                       "(raise --autopilot-human-timeout for more time)")


class HumanAnswers:
    """The answer source of one ``human/`` run. Recording: write the request, say where, wait for the
    person's answer, then pass it through litellm (and so into the cassette). Replaying: litellm
    alone, the cassette answers."""

    def __init__(self, client, folder: Path, server_root: Path, *, live: bool, timeout_s: float,
                 announce: Callable[[str], None], run: str, shown: Callable[[Path], str] = str):
        self.client = client  # llm.client.LLMClient
        self.folder = folder
        self.server_root = server_root
        self.live = live
        self.timeout_s = timeout_s
        self.announce = announce
        self.run = run
        self.shown = shown  # how a path is shown: relative to the checkout, never its location
        self.asked = 0

    def __call__(self, messages: list[dict[str, str]], meta: dict[str, Any]) -> Answer:
        if not self.live:
            return self.client(messages, meta)
        self.asked += 1
        request = self.folder / f"request-{self.asked:02d}.md"
        answer = request.with_name(f"answer-{self.asked:02d}.md")
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write(request, request_text(messages, meta, self.asked, answer.name, self.run, self.timeout_s))
        self.announce(f"autopilot human baseline: read {self.shown(request)}, then write your answer to {answer.name} "
                      f"beside it (atomically: write another name, then rename); waiting up to {self.timeout_s:g} s")
        started = time.monotonic()
        wait_for_answer(answer, self.timeout_s, shown=self.shown(answer))
        reply = self.client(messages, {**meta, "answer_file": answer.relative_to(self.server_root).as_posix()})
        return dataclasses.replace(reply, latency_s=round(time.monotonic() - started, 3))  # the person's time


class HumanServer(StandinServer):
    """Serves the person's answer files (under ``root`` only) as OpenAI chat completions, so that
    litellm and vcrpy record them like any model's."""

    def __init__(self, root: Path):
        super().__init__({}, InjectedDelay())
        self.root = Path(root).resolve()

    def close(self) -> None:
        self.stop()

    def respond(self, headers, body: dict) -> tuple[int, dict]:
        path = (self.root / (headers.get(HUMAN_ANSWER_HEADER) or "")).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            return 400, {"error": {"message": f"human baseline: no answer file {headers.get(HUMAN_ANSWER_HEADER)!r} in "
                                              "the run's human/ folder", "type": "invalid_request_error"}}
        text = path.read_text(encoding="utf-8", errors="replace")
        return 200, completion(text, "human-" + path.stem, str(body.get("model", "human")), body)


def terminal_announcer(config) -> Callable[[str], None]:
    """Print a line on the terminal while a test runs: pytest's capture is lifted for it, so the
    person sees it without ``-s``; without a terminal reporter (an xdist worker) it goes to stderr."""
    def announce(line: str) -> None:
        capture = config.pluginmanager.get_plugin("capturemanager")
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
            if reporter is not None:
                reporter.write_line(line)
                reporter.flush()
            else:
                print(line, file=sys.stderr, flush=True)

    return announce

