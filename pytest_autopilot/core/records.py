"""The records every part of the harness exchanges: checks, verdicts, executions, attempts, runs.

Plain dataclasses so they serialise to JSON (journal, TestReport, results file) with
``dataclasses.asdict`` and come back with ``from_dict``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

DEFAULT_STRATEGY = "stateless"  # the paper's repair strategy (loop.strategies)
CODE_CHARS = 12_000  # a repair prompt shows the previous answer's code up to this many characters


class Category:
    """Failure categories, defined in one place. A successful attempt has category ``None``."""

    NO_CODE = "no_code"  # the answer had no usable fenced block / JSON
    ANSWER_TRUNCATED = "answer_truncated"  # the token limit cut the answer before its code block was complete
    SYNTAX_ERROR = "syntax_error"  # Python code does not parse
    COMPILE_ERROR = "compile_error"  # a C/C++ (firmware) build failed compiling: type errors, undeclared names, ...
    LINK_ERROR = "link_error"  # a firmware build compiled but did not link (undefined reference, ...)
    BUDGET_EXCEEDED = "budget_exceeded"  # a firmware image built but is over the board's flash or RAM budget
    RUNTIME_ERROR = "runtime_error"  # non-zero exit, exception
    TIMEOUT = "timeout"  # killed at the wall-clock limit
    RESOURCE_LIMIT = "resource_limit"  # CPU, memory, file-size or process-count limit hit
    ARTIFACT_MISSING = "artifact_missing"  # ran, but an expected output file is absent/unreadable
    SEMANTIC_MISMATCH = "semantic_mismatch"  # artifact present but wrong
    LLM_API_ERROR = "llm_api_error"  # provider error after transient retries
    CONTEXT_TRUNCATED = "context_truncated"  # prompt longer than the model's context
    CASSETTE_MISS = "cassette_miss"  # replay asked for a request the cassette does not hold
    CASSETTE_INVALID = "cassette_invalid"  # a cassette is unreadable or does not match its manifest's sha256
    HARNESS_ERROR = "harness_error"  # a bug or missing dependency on our side

    ALL = (
        NO_CODE, ANSWER_TRUNCATED, SYNTAX_ERROR, COMPILE_ERROR, LINK_ERROR, BUDGET_EXCEEDED, RUNTIME_ERROR, TIMEOUT, RESOURCE_LIMIT, ARTIFACT_MISSING,
        SEMANTIC_MISMATCH, LLM_API_ERROR, CONTEXT_TRUNCATED, CASSETTE_MISS, HARNESS_ERROR, CASSETTE_INVALID,
    )


# What a failed firmware build's output says went wrong, checked in this order: an image over the
# board's flash or RAM is also reported by the linker (region overflowed, ld returned 1), so the
# budget comes first; a link error is only what a compiled program lacks or has twice.
_BUDGET_MARKERS = ("sketch too big", "not enough memory", "exceeds available space", "overflowed by",
                   "will not fit in region", "over the board's budget")
_LINK_MARKERS = ("undefined reference to", "multiple definition of", "ld returned", "collect2: error",
                 "cannot find -l", "undefined symbol")


def build_failure_category(output: str) -> str:
    """``compile_error``, ``link_error`` or ``budget_exceeded`` for a failed C/C++ build's output."""
    text = output.lower()
    if any(marker in text for marker in _BUDGET_MARKERS):
        return Category.BUDGET_EXCEEDED
    if any(marker in text for marker in _LINK_MARKERS):
        return Category.LINK_ERROR
    return Category.COMPILE_ERROR


class RunStatus:
    SUCCESS = "success"  # strict oracle accepted the final attempt
    FAILURE = "failure"  # attempts exhausted without strict success
    ERROR = "error"  # harness / LLM API / cassette problem stopped the run
    CRASHED = "crashed"  # the worker died during the run
    INCOMPLETE = "incomplete"  # interrupted (Ctrl+C) before the run ended


@dataclass
class Check:
    """One named check of an oracle, e.g. ``output_exists`` or ``no_nan:Red``."""

    name: str
    passed: bool
    detail: str = ""
    restates_run: bool = False  # the detail repeats the program's exit and stderr (repair feedback shows them once)


@dataclass
class Verdict:
    """An oracle's decision with the per-check details that led to it."""

    oracle: str
    passed: bool
    checks: list[Check] = field(default_factory=list)
    category: str | None = None  # a Category value when not passed
    # graded quality beside the verdict (e.g. accuracy, flash_bytes): reported per group over the
    # runs that passed, never shown to the model (not feedback: summary() leaves them out)
    metrics: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_checks(cls, oracle: str, checks: list[Check], category: str | None = None,
                    metrics: dict[str, float] | None = None) -> "Verdict":
        passed = all(c.passed for c in checks) and bool(checks)
        return cls(oracle, passed, checks, None if passed else (category or Category.SEMANTIC_MISMATCH),
                   dict(metrics or {}))

    @property
    def failed_checks(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def summary(self, omit_restated: bool = False) -> str:
        """Short text for repair prompts: the failed checks and their details; ``omit_restated``
        leaves out checks that only repeat the program's exit and stderr, shown elsewhere."""
        return "\n".join(f"check {c.name} failed: {c.detail}" for c in self.failed_checks
                         if not (omit_restated and c.restates_run))


@dataclass
class ExecResult:
    """What happened when generated code ran in the sandbox."""

    returncode: int | None
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False
    signal: int | None = None  # terminating signal number, if killed
    limit_hit: str | None = None  # "cpu" | "memory" | "file_size" | "processes" | None
    output_truncated: bool = False
    isolation: dict[str, Any] = field(default_factory=dict)  # what was actually enforced


@dataclass
class Attempt:
    """One LLM call plus everything done with its answer; or, re-scoring, one archived program
    judged as it is (``archived_file``, ``archived_sha256``; no prompt, hash or response: none was sent)."""

    step: str
    item: str | None  # for per-item steps (DP operations), which item
    number: int  # 1-based attempt number within the step/item
    prompt_hash: str | None
    prompt: str | None
    prompt_chars: int | None = None  # characters of every message sent for this attempt (the whole context)
    response: str | None = None
    code: str | None = None
    code_lang: str | None = None
    extraction_note: str = ""
    execution: ExecResult | None = None
    strict: Verdict | None = None
    legacy: Verdict | None = None
    category: str | None = None
    error: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cost_usd: float | None = None  # None: unknown (unmapped local model)
    latency_s: float | None = None
    transient_retries: int = 0
    truncated: bool | None = None  # the prompt was cut to fit the context; None: could not be determined
    finish_reason: str | None = None  # why the model stopped, as the API said ("stop", "length", ...); None: not reported
    answer_truncated: bool = False  # the answer was cut at the token limit (finish_reason "length")
    repeated: bool = False  # the code (no code: the answer's text) equals an earlier answer's in the same step (whitespace ignored)
    first_error: str | None = None  # the feedback's first error, one normalised line (loop.stuck)
    stuck: bool = False  # the same first error as the previous attempt of the step
    stopped: str | None = None  # why the step ended early (e.g. --autopilot-stop-on-repeat)
    # the CPU slot (loop.cpu_gate) held while its code ran and was judged; None: it needed none (no code)
    cpu_wait_s: float | None = None  # seconds spent waiting for the slot, outside the run's duration and timeout
    cpu_started_at: str | None = None  # UTC, when the slot was got
    cpu_finished_at: str | None = None  # UTC, just before it was given back
    archived_file: str | None = None  # re-scoring: the program's path inside the archive
    archived_sha256: str | None = None  # ... and the sha256 of its bytes

    @property
    def strict_passed(self) -> bool:
        return bool(self.strict and self.strict.passed)


@dataclass
class RunRecord:
    """One (case × model × repetition): the unit the reports count."""

    nodeid: str
    case: str
    stage: str
    model_id: str  # readable id, e.g. "scripted-standin" or "ollama-phi4-p"
    model: str  # the litellm model string
    params: dict[str, Any]
    repetition: int
    status: str
    strict_success: bool
    legacy_success: bool
    attempts: list[Attempt] = field(default_factory=list)
    scripted: bool = False  # the answers came from the scripted stand-in, not a real LLM
    human: bool = False  # a person answered (the human baseline, llm.human), not an LLM
    strategy: str = DEFAULT_STRATEGY  # the repair strategy (loop.strategies)
    tier: int | None = None  # the case's difficulty tier (cases.spec.TIERS); None: imported or older runs
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    duration_s: float | None = None
    worker: str = "master"
    host: str | None = None  # the machine the run ran on (socket.gethostname() of its worker)
    cassette: str | None = None  # relative to that host's checkout
    warnings: list[str] = field(default_factory=list)  # problems that did not stop the run (cassette check: warn)
    # a multi-step run that ended before its last step (loop.repair.LoopResult): no legacy success
    stopped_at_step: int | None = None  # 1-based, each planned item one step
    stopped_step: str | None = None  # its key, e.g. "plan" or "operations/split_train_test"
    steps_total: int | None = None  # steps of the whole pipeline; None when never planned

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunRecord":
        data = dict(data)
        data["attempts"] = [attempt_from_dict(a) for a in data.get("attempts", [])]
        return cls(**data)


def verdict_from_dict(data: dict[str, Any] | None) -> Verdict | None:
    if data is None:
        return None
    return Verdict(data["oracle"], data["passed"], [Check(**c) for c in data["checks"]], data.get("category"),
                   dict(data.get("metrics") or {}))


def attempt_from_dict(data: dict[str, Any]) -> Attempt:
    data = dict(data)
    if data.get("execution") is not None:
        data["execution"] = ExecResult(**data["execution"])
    data["strict"] = verdict_from_dict(data.get("strict"))
    data["legacy"] = verdict_from_dict(data.get("legacy"))
    return Attempt(**data)


@dataclass
class Answer:
    """What the answer source returned for one prompt."""

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cost_usd: float | None = None
    latency_s: float | None = None
    transient_retries: int = 0
    truncated: bool | None = None  # the prompt was cut to fit the context (Ollama)
    finish_reason: str | None = None  # as the API reported it: "stop", "length" (cut at the token limit), ...
    max_tokens: int | None = None  # the request's generation limit, for the cut-answer feedback

    @property
    def cut(self) -> bool:
        """The model stopped because it ran out of tokens, not because it had finished."""
        return self.finish_reason == "length"
    archived_file: str | None = None  # re-scoring: the text is this archived program, run as it is
    archived_sha256: str | None = None
