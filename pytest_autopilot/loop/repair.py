"""The repair loop, the system under test: render → ask → extract → execute → oracles →
repair with normalised error feedback, until the strict oracle accepts or attempts run out.

Multi-step cases (DP: a JSON plan, then one program per planned operation) run through
the same ``_run_step``; per-item steps can chain each item's outputs into the next, and a step's
declared ``outputs`` (the files its accepted program wrote) start every later step's sandbox: a
pipeline (data, then model, then firmware) whose steps may each run on their own executor.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from pytest_autopilot.cases import prompts
from pytest_autopilot.cases.spec import Case, StepSpec
from pytest_autopilot.core.errors import HarnessError
from pytest_autopilot.core.records import CODE_CHARS, DEFAULT_STRATEGY, Answer, Attempt, Category, Check, Verdict
from pytest_autopilot.core.registry import Registry
from pytest_autopilot.core.stages import stage as stage_of
from pytest_autopilot.core.util import slug
from pytest_autopilot.loop.cpu_gate import CpuGate, utc_now
from pytest_autopilot.loop.extract import Extracted, NoCode, extract_code, extract_json
from pytest_autopilot.loop.feedback import cut_feedback, failure_category, feedback_text
from pytest_autopilot.loop.normalise import error_section
from pytest_autopilot.loop.registries import Registries
from pytest_autopilot.loop.stuck import note_first_error
from pytest_autopilot.loop.strategies import FailedAttempt
from pytest_autopilot.oracles import OracleContext
from pytest_autopilot.oracles.legacy import legacy_verdict


class AnswerSource(Protocol):
    def __call__(self, messages: list[dict[str, str]], meta: dict[str, Any]) -> Answer: ...


@dataclass
class LoopSettings:
    max_attempts: int
    error_chars: int
    extract_policy: str
    limits: Any  # sandbox.Limits
    strategy: str = DEFAULT_STRATEGY
    stop_on_repeat: int = 0  # end a step after this many identical answers (0: never)
    code_chars: int = CODE_CHARS  # the previous answer's code in a repair prompt is cut beyond this
    cpu_slots: int | None = None  # CPU-heavy steps at once on the machine (None: one per usable core)
    cpu_owner: str = ""  # the session holding or waiting for slots (its run id), for the progress line


@dataclass
class LoopResult:
    attempts: list[Attempt] = field(default_factory=list)
    strict_success: bool = False
    legacy_success: bool = False
    # a multi-step run that ended before its last step: which step (1-based, plan items counted
    # one by one), its key, and how many steps the whole pipeline has (None: never planned)
    stopped_at_step: int | None = None
    stopped_step: str | None = None
    steps_total: int | None = None


@dataclass
class _StepResult:
    passed: bool
    legacy_passed: bool
    answer: Any = None
    outputs: dict[str, bytes] = field(default_factory=dict)  # what its manifest named (chain_outputs)
    declared: dict[str, bytes] = field(default_factory=dict)  # its declared outputs, for the later steps


class RepairLoop:
    """Runs a case's steps with one answer source and the case's executor (a step naming another one
    gets it from ``make_executor(name)``, built on first use); oracles, legacy checks and the repair
    strategy come from ``registries`` (the session's: built-in plus registered ones)."""

    def __init__(self, case: Case, ask: AnswerSource, executor, settings: LoopSettings,
                 on_attempt: Callable[[Attempt], None] | None = None, registries: Registries | None = None,
                 shared=None, make_executor: Callable[[str], Any] | None = None):
        self.case = case
        self.ask = ask
        self.executor = executor
        self.make_executor = make_executor
        self._executors: dict[str, Any] = {case.executor: executor}
        self.settings = settings
        self.on_attempt = on_attempt or (lambda attempt: None)
        self.registries = registries or Registries()
        self.shared = shared  # the session's SharedResources, handed to oracles (their memos)
        self.cpu_gate = CpuGate(settings.cpu_slots, owner=settings.cpu_owner)
        self.answers: dict[str, Any] = {}
        self.result = LoopResult()

    def run(self) -> LoopResult:
        spec = self.case.spec
        answers = self.answers
        legacy_all = True
        ran = 0  # steps run so far, each planned item one step
        carried: dict[str, bytes] = {}  # earlier steps' declared outputs, as their accepted programs wrote them
        for index, step in enumerate(spec.steps):
            if step.for_each:
                source, key = step.for_each.split(".")
                items = answers[source][key]
                inputs = {**self._workspace_files(), **carried}
                for position, item in enumerate(items):
                    outcome = self._run_step(step, answers, item=item, items=items, inputs=inputs)
                    ran += 1
                    legacy_all &= outcome.legacy_passed
                    if not outcome.passed:
                        last = index == len(spec.steps) - 1 and position == len(items) - 1
                        return self._finish(False, legacy_all, None if last else ran)
                    if step.chain_outputs:
                        inputs = {**self._workspace_files(), **carried, **outcome.outputs}
            else:
                outcome = self._run_step(step, answers, inputs={**self._workspace_files(), **carried})
                ran += 1
                legacy_all &= outcome.legacy_passed
                if not outcome.passed:
                    return self._finish(False, legacy_all, None if index == len(spec.steps) - 1 else ran)
                answers[step.name] = outcome.answer
                carried.update(outcome.declared)
        return self._finish(True, legacy_all)

    def _finish(self, strict: bool, legacy: bool, stopped_at: int | None = None) -> LoopResult:
        """``legacy``: the original check accepted some attempt of every step, i.e. the paper's
        pipeline would have reported this run a success. A run that stopped before its last
        step (``stopped_at``) never reached the steps that decide that: it is no legacy success
        (and so no silent failure); its per-step verdicts stay on its attempts."""
        result = self.result
        result.strict_success = strict
        result.legacy_success = legacy and stopped_at is None
        if stopped_at is not None:
            last = result.attempts[-1]
            result.stopped_at_step = stopped_at
            result.stopped_step = f"{last.step}/{last.item}" if last.item else last.step
            result.steps_total = self._steps_total()
        return result

    def _steps_total(self) -> int | None:
        """Steps of the whole pipeline, each planned item one; None when a step's items were never planned."""
        total = 0
        for step in self.case.spec.steps:
            if not step.for_each:
                total += 1
                continue
            source, key = step.for_each.split(".")
            items = self.answers.get(source, {}).get(key) if isinstance(self.answers.get(source), dict) else None
            if not isinstance(items, list):
                return None
            total += len(items)
        return total

    def _workspace_files(self) -> dict[str, Path | bytes]:
        return {dest: self.case.asset(name) for dest, name in self.case.spec.workspace.items()}

    def _variables(self, step: StepSpec, answers, item, items, inputs) -> dict[str, Any]:
        spec = self.case.spec
        return {
            **spec.context,
            "description": spec.description,
            "workspace": dict(spec.workspace),
            "steps": answers,
            "item": item,
            "items": items,
            "inputs": sorted(inputs),
            "language": step.language,
        }

    def _run_step(self, step: StepSpec, answers, *, item=None, items=None, inputs=None) -> _StepResult:
        variables = self._variables(step, answers, item, items, inputs or {})
        task = prompts.render(self.case.prompts_dir, step.prompt, variables)
        item_name = slug(str(item.get("name", ""))) if isinstance(item, dict) else None
        step_key = f"{step.name}/{item_name}" if item_name else step.name
        messages = [{"role": "user", "content": task}]
        answers_seen: dict[str, int] = {}  # whitespace-free code (or text) -> how often it was answered in this step
        legacy_passed = False
        previous: Attempt | None = None
        for number in range(1, self.settings.max_attempts + 1):
            attempt = Attempt(step=step.name, item=item_name, number=number,
                              prompt_hash=prompts.prompt_hash(messages), prompt=messages[-1]["content"],
                              prompt_chars=sum(len(m["content"]) for m in messages))
            self.result.attempts.append(attempt)
            try:
                answer = self.ask(messages, {"step_key": step_key, "attempt": number,
                                             "strategy": self.settings.strategy})
                _copy_usage(answer, attempt)
                if answer.archived_file is not None:  # nothing was asked: record the file, not a prompt
                    attempt.prompt = attempt.prompt_hash = attempt.prompt_chars = None
                    attempt.archived_file, attempt.archived_sha256 = answer.archived_file, answer.archived_sha256
                outcome, feedback = self._judge(step, attempt, answer, item, inputs or {})
            except HarnessError as exc:
                attempt.category, attempt.error = exc.category, str(exc)
                self.on_attempt(attempt)
                raise
            legacy_passed |= bool(attempt.legacy and attempt.legacy.passed)
            if attempt.truncated and not attempt.strict_passed:
                attempt.category = Category.CONTEXT_TRUNCATED
            stuck = self._note_repeat(attempt, answers_seen)
            note_first_error(attempt, feedback, previous)
            previous = attempt
            self.on_attempt(attempt)
            if outcome is not None:
                return _StepResult(True, legacy_passed, *outcome)
            if stuck:
                break
            messages = self._next_messages(step, messages, variables, task, number, attempt, answer.text, feedback)
        return _StepResult(False, legacy_passed)

    def _note_repeat(self, attempt: Attempt, seen: dict[str, int]) -> bool:
        """Flag an answer whose code equals an earlier one of the step (ignoring whitespace), or,
        for an answer without code, whose text does; True when ``stop_on_repeat`` identical
        answers end the step."""
        if attempt.code is not None:
            key = "code:" + "".join(attempt.code.split())
        elif attempt.response is not None:
            key = "text:" + "".join(attempt.response.split())
        else:
            return False
        seen[key] = seen.get(key, 0) + 1
        attempt.repeated = seen[key] > 1
        limit = self.settings.stop_on_repeat
        if limit and seen[key] >= limit and not attempt.strict_passed:
            attempt.stopped = f"stopped: {seen[key]} identical answers (--autopilot-stop-on-repeat {limit})"
            return True
        return False

    def _next_messages(self, step: StepSpec, messages, variables, task, number, attempt, text, feedback):
        """The next prompt, by the repair strategy."""
        built = attempt.execution is not None and attempt.execution.isolation.get("phase") == "build"
        # a compiler's first errors matter (later ones often follow from them); a traceback ends with its error
        error = error_section(feedback, self.settings.error_chars, keep="head" if built else "ends")
        strategy = self.registries.strategies.get(self.settings.strategy)
        return strategy(FailedAttempt(
            step=step, messages=messages, task=task, number=number, code=attempt.code, text=text, error=error,
            code_chars=self.settings.code_chars,
            render=lambda template, extra: prompts.render(self.case.prompts_dir, template, {**variables, **extra})))

    def _executor(self, step: StepSpec):
        """The step's executor: the case's, or the one it names (built once per loop)."""
        name = self.case.step_executor(step)
        if name not in self._executors:
            if self.make_executor is None:
                raise HarnessError(Category.HARNESS_ERROR, f"step {step.name} runs on executor {name!r}, "
                                   "but this loop was given no way to build it (make_executor)")
            self._executors[name] = self.make_executor(name)
        return self._executors[name]

    def _judge(self, step: StepSpec, attempt: Attempt, answer: Answer, item, inputs):
        """Extract, execute and judge one answer. Returns ((answer, outputs, declared) or None, feedback)."""
        text = answer.text
        attempt.response = None if attempt.archived_file else text
        executor = self._executor(step)
        context = dict(case_dir=self.case.dir, params=dict(step.oracle.params),
                       assets={n: self.case.asset(n) for n in self.case.spec.assets},
                       workspace=dict(self.case.spec.workspace), item=item, limits=self.settings.limits,
                       sandbox=executor.sandbox, inputs=dict(inputs), board=self.case.board,
                       steps=dict(self.answers), run=lambda code, files, prefix="rerun-": self._rerun(
                           executor, code, files, prefix), shared=self.shared)
        strict_oracle = _guarded(step.oracle.name, self.registries.oracles)
        try:
            if step.kind == "json":
                parsed, attempt.extraction_note = extract_json(text)
                attempt.code, attempt.code_lang = _json_text(parsed), "json"
                attempt.legacy = legacy_verdict(None)
                with self._cpu_slot(attempt):  # a plan's oracle may re-run code too (ctx.run)
                    attempt.strict = strict_oracle(OracleContext(workdir=Path("."), execution=None, answer=parsed,
                                                                 **context))
                return self._verdict(attempt, parsed, {}, {})
            extracted = (Extracted(text, step.language or "", "archived file, run as it is") if attempt.archived_file
                         else extract_code(text, step.language, self.settings.extract_policy))
        except NoCode as exc:
            # a cut answer's block was never closed: say that, not "no block" (the model did write one)
            category, check = (Category.ANSWER_TRUNCATED, Check("answer_complete", False, cut_feedback(answer, step, closed=False))) \
                if answer.cut else (Category.NO_CODE, _no_code_check(exc))
            attempt.category, attempt.error = category, check.detail
            attempt.strict = Verdict.from_checks(step.oracle.name, [check], category)
            attempt.legacy = Verdict.from_checks("legacy", [check], category)
            return None, check.detail
        attempt.code, attempt.code_lang, attempt.extraction_note = extracted.text, extracted.language, extracted.note
        manifest = _optional_manifest(text) if step.manifest else None  # its absence is the oracle's finding
        sandbox = executor.sandbox
        with self._cpu_slot(attempt):  # the build, the run, the oracle and its re-runs: the CPU-heavy part
            workdir = sandbox.new_workdir()
            try:
                execution = executor.execute(extracted.text, workdir, inputs, self.settings.limits)
                attempt.execution = execution
                legacy = self.registries.legacy_checks.get(step.legacy or stage_of(self.case.spec.stage).legacy)
                attempt.legacy = legacy(execution)
                attempt.strict = strict_oracle(OracleContext(workdir=workdir, execution=execution,
                                                             answer=extracted.text, manifest=manifest, **context))
                outputs = _manifest_outputs(workdir, manifest) if attempt.strict.passed else {}
                declared = _declared_outputs(workdir, step, attempt) if attempt.strict.passed else {}
            finally:
                sandbox.cleanup(workdir)
        outcome, feedback = self._verdict(attempt, extracted.text, outputs, declared)
        if outcome is None and answer.cut:
            feedback = f"{cut_feedback(answer, step, closed=True)}\n{feedback}"
        return outcome, feedback

    @contextmanager
    def _cpu_slot(self, attempt: Attempt):
        """Hold a CPU slot for the block, recording the wait and the held span on the attempt.
        The executor's timeout clock starts inside the block: timeouts measure the run, not the wait."""
        with self.cpu_gate.slot() as hold:
            attempt.cpu_wait_s, attempt.cpu_started_at = hold.wait_s, hold.started_at
            try:
                yield
            finally:
                attempt.cpu_finished_at = utc_now()  # still held: the next holder starts after this

    @contextmanager
    def _rerun(self, executor, code: str, files, prefix: str = "rerun-"):
        """Oracles' re-runs: the step's executor and limits, a fresh work dir removed afterwards; inside
        the attempt's CPU slot, since oracles run only there."""
        sandbox = executor.sandbox
        workdir = sandbox.new_workdir(prefix=prefix)
        try:
            yield executor.execute(code, workdir, files, self.settings.limits), workdir
        finally:
            sandbox.cleanup(workdir)

    def _verdict(self, attempt: Attempt, answer, outputs, declared):
        if attempt.strict.passed:
            return (answer, outputs, declared), ""
        attempt.category = failure_category(attempt.execution, attempt.strict)
        return None, feedback_text(attempt.execution, attempt.strict)


def _guarded(name: str, registry: Registry):
    """The strict oracle (an unknown name is the registry's HarnessError); its own crash is a
    harness error, never a verdict on the model."""
    oracle = registry.get(name)

    def judge(ctx):
        try:
            return oracle(ctx)
        except HarnessError:
            raise
        except Exception as exc:
            raise HarnessError(Category.HARNESS_ERROR, f"oracle {name} failed: {type(exc).__name__}: {exc}") from None

    return judge


def _optional_manifest(text: str) -> Any:
    try:
        return extract_json(text)[0]
    except NoCode:
        return None


def _copy_usage(answer: Answer, attempt: Attempt) -> None:
    for name in ("prompt_tokens", "completion_tokens", "total_tokens", "cost_usd", "latency_s",
                 "transient_retries", "truncated", "finish_reason"):
        setattr(attempt, name, getattr(answer, name))
    attempt.answer_truncated = answer.cut


def _no_code_check(exc: NoCode):
    return Check("code_extracted", False, str(exc))


def _json_text(parsed: Any) -> str:
    import json

    return json.dumps(parsed, indent=2, sort_keys=True)


def _declared_outputs(workdir: Path, step: StepSpec, attempt: Attempt) -> dict[str, bytes]:
    """The step's declared outputs, read before the work dir goes. One the program did not write
    fails the accepted attempt (``outputs_written``): the later steps need it."""
    found, missing = {}, []
    for rel in step.outputs:
        path = (workdir / rel).resolve()
        if path.is_file() and path.is_relative_to(workdir.resolve()):
            found[rel] = path.read_bytes()
        else:
            missing.append(rel)
    if missing:
        strict = attempt.strict
        check = Check("outputs_written", False, f"{', '.join(missing)} not written: the next steps start from "
                      f"{'these files' if len(missing) > 1 else 'this file'}; write {', '.join(step.outputs)}")
        attempt.strict = Verdict.from_checks(strict.oracle, [*strict.checks, check], Category.ARTIFACT_MISSING,
                                             strict.metrics)
        return {}
    return found


def _manifest_outputs(workdir: Path, manifest: Any) -> dict[str, bytes]:
    """Files the manifest names, kept for chained steps (read before the work dir goes)."""
    if not isinstance(manifest, dict):
        return {}
    outputs = {}
    for rel in manifest.get("outputs", []):
        path = (workdir / str(rel)).resolve()
        if path.is_file() and path.is_relative_to(workdir.resolve()):
            outputs[str(rel)] = path.read_bytes()
    return outputs
