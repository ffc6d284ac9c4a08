"""Runs one item: an LLM run through the repair loop (with its cassette), the re-scoring of an
archived program, or a self-test of one stored solution. Produces the RunRecord and the
pass/fail outcome."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from pytest_autopilot.cases.prompts import PromptError
from pytest_autopilot.cases.spec import Case
from pytest_autopilot.core.context import RunContext
from pytest_autopilot.core.errors import HarnessError, ToolchainMissing
from pytest_autopilot.core.records import DEFAULT_STRATEGY, Answer, Category, RunRecord, RunStatus
from pytest_autopilot.core.util import clip, slug
from pytest_autopilot.executors import ExecutorContext, create_executor
from pytest_autopilot.llm.profiles import LLMSpec
from pytest_autopilot.llm.standin import answer_text, solution_for
from pytest_autopilot.loop.repair import LoopSettings, RepairLoop
from pytest_autopilot.results.links import full_text_hint
from pytest_autopilot.results.selftest import SelfTestResult, judge
from pytest_autopilot.toolchains import check_requirements

PLACEHOLDER_STANDIN_URL = "http://127.0.0.1:9/v1"  # replay never connects: vcrpy answers
PLACEHOLDER_LOCAL_URL = "http://127.0.0.1:9/v1"  # the same for local models (cassettes ignore loopback ports)
SHOWN_CHECKS = 3  # failed checks named in a run's one-line message
SHORT_DETAIL_CHARS = 100  # of each one's detail there (results.json and report.html have it in full)


@dataclass(frozen=True)
class Variant:
    """What one item evaluates: an LLM run, an archived program (re-scoring), or (self-test)
    one stored solution."""

    case: Case
    llm: LLMSpec | None = None
    repetition: int = 0
    archive_file: Path | None = None  # re-scoring: a previously generated program
    archived: Any = None  # re-scoring: its cases.archive.ArchivedProgram (model, run, the study's verdict)
    solution_key: str | None = None  # self-test: step key, e.g. "code" or "operations/split"
    solution_file: str | None = None
    expect_pass: bool = True
    why: str = ""
    strategy: str = DEFAULT_STRATEGY  # the repair strategy this run is swept with

    @property
    def self_test(self) -> bool:
        return self.solution_file is not None

    @property
    def caught_by(self) -> str | None:
        """The check a known-bad solution must be rejected by, when its case names one."""
        bads = self.case.spec.solutions.bad.get(self.solution_key or "", [])
        return next((b.caught_by for b in bads if b.file == self.solution_file), None)

    @property
    def model_id(self) -> str:
        if self.archive_file is not None:
            return self.archived.model_id if self.archived else "archive-" + slug(self.archive_file.parent.name)
        return self.llm.id

    @property
    def id(self) -> str:
        if self.archive_file is not None:
            return f"{self.model_id}-{self.archived.key if self.archived else slug(self.archive_file.stem)}"
        if self.llm is not None:
            strategy = "" if self.strategy == DEFAULT_STRATEGY else f"-{self.strategy}"
            return f"{self.llm.id}{strategy}-r{self.repetition:02d}"
        stem = Path(self.solution_file or "").stem
        key = self.solution_key.replace("/", "-") if self.solution_key else ""
        return f"{key}-{stem}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def loop_settings(ctx: RunContext, case: Case, strategy: str = DEFAULT_STRATEGY) -> LoopSettings:
    from pytest_autopilot.executors.sandbox import Limits

    settings = ctx.settings
    spec = case.spec
    limits = Limits().replace(
        timeout_s=settings.for_case("run_timeout", spec),
        cpu_s=spec.limits.cpu_s, memory_mb=spec.limits.memory_mb,
        file_size_mb=spec.limits.file_size_mb, processes=spec.limits.processes,
    )
    return LoopSettings(settings.for_case("max_attempts", spec), settings.for_case("error_chars", spec),
                        settings.get("extract"), limits, strategy, settings.get("stop_on_repeat"),
                        settings.for_case("code_chars", spec), cpu_slots=settings.get("cpu_slots"),
                        cpu_owner=ctx.run_id)


def requirements_or_skip(ctx: RunContext, case: Case) -> ToolchainMissing | None:
    """The case's toolchain check, done once per run: what is missing (the run then stops with
    it), or with --autopilot-missing-toolchain=skip (or the case's requires.on_missing: skip) a
    skip instead. With --autopilot-hil, skip when no board is attached."""
    if ctx.settings.get("hil"):
        from pytest_autopilot.executors.serial_hil import hil_unavailable

        reason = hil_unavailable(case)
        if reason:
            pytest.skip(reason)
    try:
        check_requirements(case.spec.requires.toolchains, ctx.registries.toolchains)
    except ToolchainMissing as exc:
        missing = exc
    else:
        missing = None
    if (case.spec.requires.on_missing or ctx.settings.get("missing_toolchain")) != "skip":
        return missing
    try:
        if missing is not None:
            raise missing
        from pytest_autopilot.executors.environments import ensure_for_case

        ensure_for_case(case)  # a declared environment that cannot be built skips the case too
    except ToolchainMissing as exc:
        pytest.skip(f"{ctx.relative(case.path)}: {exc}")
    return None


def executor_for(ctx: RunContext, case: Case, name: str | None = None):
    """The case's executor (or, by ``name``, one a step names) from the session's registry (built-in
    or added by a conftest)."""
    made = ExecutorContext(case=case, sandbox=ctx.part("sandbox"), shared=ctx.shared,
                           options={"hil": bool(ctx.settings.get("hil"))})
    return create_executor(ctx.registries.executors, name or case.executor, made)


def _repair_loop(ctx: RunContext, case: Case, ask, settings: LoopSettings, on_attempt=None) -> RepairLoop:
    return RepairLoop(case, ask, executor_for(ctx, case), settings, on_attempt=on_attempt, registries=ctx.registries,
                      shared=ctx.shared, make_executor=lambda name: executor_for(ctx, case, name))


def run_variant(ctx: RunContext, nodeid: str, variant: Variant) -> RunRecord:
    """One evaluated run: an LLM (through its cassette) or an archived program (re-scoring)."""
    case = variant.case
    missing = requirements_or_skip(ctx, case)
    spec = variant.llm
    archive = variant.archive_file is not None
    cassette = None if archive else ctx.cassettes.path(nodeid)
    record = RunRecord(nodeid=nodeid, case=case.name, stage=case.spec.stage, model_id=variant.model_id,
                       model=f"archive/{variant.archived.model}" if archive else spec.model,  # a name, never a path
                       params=variant.archived.params() if archive else dict(spec.params), repetition=variant.repetition,
                       status=RunStatus.INCOMPLETE, strict_success=False, legacy_success=False,
                       scripted=bool(spec and spec.scripted), human=bool(spec and spec.is_human), started_at=_now(), worker=ctx.worker_id, host=ctx.host,
                       cassette=ctx.relative(cassette) if cassette else None, strategy=variant.strategy,
                       tier=case.spec.tier)
    journal = ctx.part("journal")
    journal.start(record)
    started = time.perf_counter()
    loop = None
    try:
        if missing is not None:
            raise missing
        settings = loop_settings(ctx, case, variant.strategy)
        if archive:
            settings.max_attempts = 1  # a stored program is judged once, as it was
            ask, recording = _archived_answer(variant), None
        else:
            ask, recording = _llm_answer(ctx, case, variant, cassette, record)
        loop = _repair_loop(ctx, case, ask, settings, on_attempt=lambda attempt: journal.attempt(nodeid, attempt))
        if recording is None:
            result = loop.run()
        else:
            with recording:
                result = loop.run()
        record.status = RunStatus.SUCCESS if result.strict_success else RunStatus.FAILURE
        record.strict_success, record.legacy_success = result.strict_success, result.legacy_success
        record.stopped_at_step, record.stopped_step = result.stopped_at_step, result.stopped_step
        record.steps_total = result.steps_total
    except (ToolchainMissing, PromptError, ImportError) as exc:  # about the case: name its file
        record.status, record.error = RunStatus.ERROR, f"{Category.HARNESS_ERROR}: {ctx.relative(case.path)}: {exc}"
    except HarnessError as exc:
        record.status, record.error = RunStatus.ERROR, f"{exc.category}: {exc}"
    except Exception as exc:  # a bug on our side: still a finished run with its message, never a lost one
        detail = " ".join(str(exc).split())[:300]
        record.status, record.error = RunStatus.ERROR, (f"{Category.HARNESS_ERROR}: unexpected {type(exc).__name__}: "
                                                        f"{detail} (a bug in pytest-autopilot; please report it)")
    finally:
        record.attempts = loop.result.attempts if loop is not None else []
        record.finished_at = _now()
        record.duration_s = round(time.perf_counter() - started, 4)
    journal.finish(record)
    return record


def _llm_answer(ctx: RunContext, case: Case, variant: Variant, cassette: Path, record: RunRecord):
    """The litellm client for this run and the cassette it records to / replays from."""
    from pytest_autopilot.llm.client import LLMClient

    spec = variant.llm
    recording = ctx.cassettes.for_run(cassette, record.warnings)
    will_record = recording.will_record
    api_base, headers_meta = None, {}
    if spec.scripted:
        case_key = ctx.relative(case.path)
        api_base = _standin_url(ctx, case_key, case) if will_record else PLACEHOLDER_STANDIN_URL
        headers_meta = {"case": case_key, "repetition": variant.repetition}
    elif spec.is_local:  # replay answers from the cassette: no server, no model file needed
        api_base = ctx.local.url(spec) if will_record else PLACEHOLDER_LOCAL_URL
    elif spec.is_human:  # the person is asked only when recording; a replay needs no one
        api_base = ctx.part("human_server").url if will_record else PLACEHOLDER_STANDIN_URL
    timeout = ctx.settings.for_case("llm_timeout", case.spec, spec)
    client = LLMClient(spec, timeout_s=timeout,
                       retries=ctx.settings.get("llm_retries"), api_base=api_base, cassette=str(cassette),
                       meta=headers_meta, repetition=variant.repetition)
    if spec.is_human:
        client = _human_answers(ctx, client, cassette, nodeid=record.nodeid, live=will_record)
    return client, recording


def _human_answers(ctx: RunContext, client, cassette: Path, *, nodeid: str, live: bool):
    """A person answers through files in the report folder (llm.human), beside where the cassette goes."""
    from pytest_autopilot.llm.human import HumanAnswers

    root = ctx.report_dir / "human"
    folder = root / cassette.relative_to(ctx.cassettes.dir).with_suffix("")
    return HumanAnswers(client, folder, root, live=live, timeout_s=ctx.settings.get("human_timeout"),
                        announce=ctx.announce, run=nodeid, shown=ctx.relative)


def _standin_url(ctx: RunContext, case_key: str, case: Case) -> str:
    """The session's stand-in server (started on first use), told this case's scripted answers."""
    standin = ctx.part("standin")
    standin.cases[case_key] = case
    return standin.url


def _archived_answer(variant: Variant):
    """The archived program itself: its text, its path in the archive and its hash (no LLM answer)."""
    path = variant.archive_file
    data = path.read_bytes()
    rel = variant.archived.rel if variant.archived else path.name

    def ask(messages, meta) -> Answer:
        return Answer(data.decode("utf-8", errors="replace"), archived_file=rel,
                      archived_sha256=hashlib.sha256(data).hexdigest())

    return ask


def outcome_message(record: RunRecord, report_dir: str) -> str | None:
    """None when the run passed; otherwise one short line saying why it did not, ending with where
    the full text is (``report_dir``: the run's report folder as shown to the user)."""
    if record.status == RunStatus.SUCCESS:
        return None
    where_full = full_text_hint(report_dir, record.nodeid)
    if record.status == RunStatus.ERROR:
        return f"{record.model_id}: run stopped: {record.error}; {where_full}"
    last = record.attempts[-1] if record.attempts else None
    failed = last.strict.failed_checks if last and last.strict else []
    shown = ", ".join(f"{c.name} ({clip(c.detail, SHORT_DETAIL_CHARS)})" if c.detail else c.name for c in failed[:SHOWN_CHECKS])
    more = f" (+{len(failed) - SHOWN_CHECKS} more)" if len(failed) > SHOWN_CHECKS else ""
    where = f"step {last.step}{'/' + last.item if last.item else ''}" if last else "no attempt"
    return (f"{record.model_id}: strict oracle rejected {where} after {last.number if last else 0} attempt(s); "
            f"last category {last.category if last else '-'}; failed checks: {shown or '-'}{more}; {where_full}")


def junit_properties(record: RunRecord, case_file: str, report_dir: str) -> list[tuple[str, Any]]:
    """The compact properties a run's junit testcase carries (the run record itself is in results.json)."""
    return [("autopilot_case", case_file), ("autopilot_model", record.model_id),
            ("autopilot_strategy", record.strategy), ("autopilot_repetition", record.repetition),
            ("autopilot_status", record.status), ("autopilot_strict", record.strict_success),
            ("autopilot_legacy", record.legacy_success), ("autopilot_attempts", len(record.attempts)),
            ("autopilot_report", f"{report_dir}/results.json")]


def self_test_properties(result: SelfTestResult, report_dir: str) -> list[tuple[str, Any]]:
    """A self-test testcase's junit properties: the solution, the verdicts and the deciding check."""
    return [("autopilot_case", result.case), ("autopilot_solution", result.solution),
            ("autopilot_expected", result.expected), ("autopilot_verdict", result.verdict),
            ("autopilot_rejected_by", result.deciding_check or ""), ("autopilot_caught_by", result.caught_by or ""),
            ("autopilot_report", f"{report_dir}/selftest.json")]


def run_self_test(ctx: RunContext, nodeid: str, variant: Variant) -> SelfTestResult:
    """Run the case with every answer taken from its stored solutions, the variant's file at
    its step key, and judge the verdict of that step against what the case declares."""
    case = variant.case
    target_key = variant.solution_key
    target_file = case.solution_path(variant.solution_file)
    result = SelfTestResult(nodeid=nodeid, case=ctx.relative(case.path), solution=variant.solution_file,
                            step=target_key, expected="accepted" if variant.expect_pass else "rejected",
                            caught_by=variant.caught_by,
                            alternative=variant.expect_pass and variant.solution_file not in case.spec.solutions.reference.values())

    def targeted(step_key: str) -> bool:
        return step_key == target_key or step_key.split("/")[0] == target_key

    def stored_answer(messages, meta) -> Answer:
        key = meta["step_key"]
        path = target_file if targeted(key) else solution_for(case, key, "reference")
        return Answer(answer_text(path))

    missing = requirements_or_skip(ctx, case)
    started = time.perf_counter()
    try:
        if missing is not None:
            raise missing
        settings = loop_settings(ctx, case)
        settings.max_attempts = 1
        attempts = _repair_loop(ctx, case, stored_answer, settings).run().attempts
    except ToolchainMissing as exc:
        result.problem = f"{ctx.relative(case.path)}: {exc}"
    except HarnessError as exc:
        result.problem = f"{variant.solution_file}: {exc.category}: {exc}"
    else:
        keys = [a.step + ("/" + a.item if a.item else "") for a in attempts]
        first = next((i for i, key in enumerate(keys) if targeted(key)), len(attempts))
        judged = [a for a, key in zip(attempts, keys) if targeted(key)]
        # the first rejection from the step on decides (a per-item step judges several items): a broken
        # artifact a later step receives is caught there (a pipeline), else the step's last verdict
        deciding = next((a for a in attempts[first:] if not a.strict_passed), judged[-1] if judged else None)
        if deciding is not None and not targeted(keys[attempts.index(deciding)]):
            result.caught_at = keys[attempts.index(deciding)]
        judge(result, deciding.strict if deciding else None, variant.why, deciding.legacy if deciding else None)
    result.duration_s = round(time.perf_counter() - started, 3)
    return result
