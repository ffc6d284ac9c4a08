"""The session object (registered as a plugin): settings, selected LLMs, the sandbox, the
journal, the stand-in server, and the results gathered for the report."""

from __future__ import annotations

import json
import socket
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from pytest_autopilot.cases.spec import is_case_file
from pytest_autopilot.core.context import RunContext
from pytest_autopilot.core.records import RunRecord, RunStatus
from pytest_autopilot.core.signals import TerminateAsInterrupt
from pytest_autopilot.core.util import relative_to, sha256_file
from pytest_autopilot import distribution as dist
from pytest_autopilot.executors import SharedResources
from pytest_autopilot.llm.cassettes import Cassettes, remove_stale_partials
from pytest_autopilot.llm.local_provider import WORKERINPUT_KEY as LOCAL_WORKERINPUT_KEY
from pytest_autopilot.llm.local_provider import LocalServers
from pytest_autopilot.llm.profiles import LLMConfigError, resolve_llms
from pytest_autopilot.loop.registries import Registries
from pytest_autopilot.results.journal import Journal, read_journals
from pytest_autopilot.results.progress import ProgressLine, wanted
from pytest_autopilot.results.rescore_view import lists_rejections, rejected_status, write_study_table
from pytest_autopilot.results.selftest import SelfTestLog, status_word
from pytest_autopilot.settings import Settings, on_ci, project_dir

# what an item hands the controller, as attributes of its call report: xdist carries a report's extra
# attributes to the controller, and junit never sees them (it writes only user_properties)
RESULT_ATTRIBUTE = "autopilot_run"  # the run record
SELF_TEST_ATTRIBUTE = "autopilot_self_test"  # a self-test item's results.selftest.SelfTestResult
SESSION_KEY = pytest.StashKey["AutopilotSession"]()


def _new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


class AutopilotSession:
    """Settings, selected LLMs, registries and run-time parts of one pytest session."""

    def __init__(self, config):
        self.config = config
        self.settings = Settings(config)
        self.root = Path(config.rootpath)  # node ids are relative to it
        self.project = project_dir(config)  # folder settings are relative to it (the ini file's folder)
        self.self_test = bool(self.settings.get("self_test"))
        try:
            models = self.project / self.settings.get("models")
            self.llms = resolve_llms(self.settings.get("llm"), models)
        except LLMConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
        self.cases_dir = self.project / self.settings.get("cases_dir")
        self.prompts_dir = self.project / self.settings.get("prompts_dir")
        self.cassettes_dir = self.project / self.settings.get("cassettes_dir")
        self.cassettes = Cassettes(self.cassettes_dir, self.settings.get("record_mode"),
                                   self.settings.get("cassette_check"), shown=self.relative)
        self.hardware_dir = self.project / self.settings.get("hardware_dir")
        workerinput = getattr(config, "workerinput", None)
        self.worker_id = workerinput["workerid"] if workerinput else "master"
        self.is_controller = workerinput is None
        self.host = socket.gethostname()
        self.worker_hosts: dict[str, dict[str, Any]] = {}  # controller: gateway id -> its worker (distribution.gateway_entry)
        self.crashed: set[str] = set()  # items whose worker died under them
        # the controller's owner_tag, handed to its workers on this machine: they share its warm servers
        self.session_tag = (workerinput or {}).get(dist.SESSION_TAG_KEY)
        self.run_id = ((workerinput or {}).get("autopilot_run_id") or self.settings.get("resume")
                       or self.settings.get("run_id") or _new_run_id())
        self.shard = dist.parse_shard(self.settings.get("shard"))
        rescore = self.settings.get("rescore")
        self.rescore_dir = (self.root / rescore).resolve() if rescore else None
        if self.rescore_dir is not None and not self.rescore_dir.is_dir():
            raise pytest.UsageError(f"--autopilot-rescore {rescore}: no such folder")
        self.report_dir = self.project / self.settings.get("reports_dir") / self.run_id
        self.started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.records: dict[str, RunRecord] = {}
        self._journal: Journal | None = None
        self._sandbox = None
        self._standin = None
        self.registries = Registries()  # what pytest_autopilot_register fills
        self.shared = SharedResources()  # warm servers, SSH connections: closed at session end
        self.local = LocalServers(self.report_dir / "servers", port=self.settings.get("local_port"),
                                  threads=self.settings.get("local_threads"),
                                  handed_over=(workerinput or {}).get(LOCAL_WORKERINPUT_KEY))
        self.interrupted: str | None = None  # why, when a KeyboardInterrupt (or pytest.exit) ended the session
        self.sigterm = TerminateAsInterrupt()  # SIGTERM (timeout, a cancelled CI job) ends it as Ctrl+C does
        self.failed_items: set[str] = set()  # case items with a failed report: gated even without a run record
        self.other_failures: set[str] = set()  # failed tests that are not case items (a project's own tests)
        self.gate_line: str | None = None
        self.not_run: dict[str, str] = {}  # case file -> the one line saying why it could not be loaded
        self.recorded_only_line: str | None = None  # what --autopilot-recorded-only deselected, and why
        self.other_collect_errors = False
        self.items_done: set[str] = set()
        self.cassettes_at_start: dict[str, str] = {}  # cassette -> sha256 before any run: what replays read
        self.stop_reason: str | None = None
        self.final_records: list[RunRecord] = []
        self.report_files: dict[str, Path] = {}
        self.tables = None  # results.report.ReportTables of the report, once written
        self.self_tests = SelfTestLog()
        self.self_test_report: Path | None = None  # selftest.json, once written
        self.progress: ProgressLine | None = None  # the live line, on the controller when wanted
        self.ctx = RunContext(
            settings=self.settings, root=self.root, prompts_dir=self.prompts_dir, hardware_dir=self.hardware_dir,
            report_dir=self.report_dir, run_id=self.run_id, worker_id=self.worker_id, host=self.host,
            started_at=self.started_at, args=list(config.invocation_params.args), registries=self.registries,
            cassettes=self.cassettes, local=self.local, shared=self.shared,
            parts={"sandbox": lambda: self.sandbox, "journal": lambda: self.journal, "standin": self.standin,
                   "human_server": self.human_server},
            announce=self._announce, shard=self.shard, rescore_dir=self.rescore_dir,
            cassettes_at_start=self.cassettes_at_start, worker_hosts=self.worker_hosts)

    # lazily built run-time parts: collection must stay cheap and side-effect free
    @property
    def journal(self) -> Journal:
        if self._journal is None:
            self._journal = Journal(self.report_dir / "journal" / f"{self.worker_id}.jsonl")
        return self._journal

    @property
    def journal_path(self) -> Path | None:
        return self._journal.path if self._journal is not None else None

    @property
    def sandbox(self):
        if self._sandbox is None:
            from pytest_autopilot.executors.sandbox import Limits, Sandbox

            self._sandbox = Sandbox(Limits(), session_tag=self.session_tag)
        return self._sandbox

    def standin(self):
        """The scripted stand-in's server, one per process, started on first use."""
        if self._standin is None:
            from pytest_autopilot.llm.standin import StandinServer

            self._standin = StandinServer({}).start()
        return self._standin

    def human_server(self):
        """The loopback server a human baseline's answers pass through (llm.human), one per process."""
        from pytest_autopilot.llm.human import HumanServer

        return self.shared.get("human-server", lambda: HumanServer(self.report_dir / "human").start())

    def _announce(self, line: str) -> None:
        from pytest_autopilot.llm.human import terminal_announcer

        terminal_announcer(self.config)(line)

    def start_local_servers(self) -> None:
        """The controller starts local models' servers before any worker, when the session may record."""
        if self.is_controller and not self.self_test and self.settings.get("record_mode") != "none":
            self.local.start([s for s in self.llms if s.is_local and s.model not in self.local.urls])

    def relative(self, path: Path) -> str:
        return relative_to(self.root, path)

    # hooks
    def pytest_sessionstart(self, session):
        if self.is_controller:
            self.sigterm.install()
        self.start_local_servers()
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if (self.is_controller and not self.config.option.collectonly
                and wanted(self.settings.get("progress"), tr, self.config.option.verbose, on_ci())):
            self.progress = ProgressLine(tr, owner=self.run_id)
            self.config.pluginmanager.register(self.progress, "autopilot_progress")
        replays = not (self.self_test or self.rescore_dir or self.config.option.collectonly
                       or self.settings.get("record_mode") == "all")
        if self.is_controller and replays and self.cassettes_dir.is_dir():
            self.cassettes_at_start.update((self.relative(p), sha256_file(p)) for p in self.cassettes_dir.rglob("*.yaml"))

    def pytest_collectreport(self, report):
        """A case file that cannot be loaded is a result (not_run), not a stop; other
        collection errors stop the session as pytest does. Under xdist the controller gets
        the workers' reports."""
        if not report.failed:
            return
        if is_case_file(self.root / report.nodeid, self.cases_dir):
            self.not_run[report.nodeid] = report.longreprtext.strip()
        else:
            self.other_collect_errors = True

    def pytest_collection_finish(self, session):
        if self.not_run and not self.other_collect_errors:
            self.config.option.continue_on_collection_errors = True

    def pytest_collection_modifyitems(self, config, items):
        """Sharding, resuming and --autopilot-recorded-only: all deselect deterministically, so
        every xdist worker agrees."""
        handed = (getattr(config, "workerinput", None) or {}).get("autopilot_done")  # see XdistHooks
        done = set(handed) if handed is not None else self.finished_in_journal() if self.settings.get("resume") else set()
        recorded_only = self.settings.get("recorded_only")
        keep, drop, unrecorded = [], [], []
        for item in items:
            in_shard = self.shard is None or dist.shard_of(item.nodeid, self.shard[1]) == self.shard[0]
            recorded = not recorded_only or self._has_cassette(item)
            if not recorded:
                unrecorded.append(item.nodeid)
            (keep if in_shard and item.nodeid not in done and recorded else drop).append(item)
        if recorded_only:
            self.recorded_only_line = dist.recorded_only_line(len(items) - len(unrecorded), unrecorded,
                                                         config.getoption("autopilot_runs"))
            if not self.is_controller:  # the controller collects nothing under xdist: it reads this at the end
                self.config.workeroutput[dist.RECORDED_ONLY_KEY] = self.recorded_only_line
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep

    def _has_cassette(self, item) -> bool:
        """Whether an item's LLM traffic was recorded (items without an LLM, e.g. self-tests, count as recorded)."""
        variant = getattr(item, "variant", None)
        if variant is None or variant.llm is None:
            return True
        return self.cassettes.path(item.nodeid).is_file()

    def finished_in_journal(self) -> set[str]:
        journal_dir = self.report_dir / "journal"
        if not journal_dir.is_dir():
            raise pytest.UsageError(f"--autopilot-resume {self.run_id}: no journal at {self.relative(journal_dir)}")
        runs = read_journals(journal_dir)
        return {nodeid for nodeid, r in runs.items() if r.status not in (RunStatus.CRASHED, RunStatus.INCOMPLETE)}

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        if call.when == "call":
            for name, value in getattr(item, "report_extras", {}).items():
                setattr(report, name, value)
        return report

    def pytest_runtest_logreport(self, report):
        if report.when == "???":  # xdist's report for the item of a worker that died
            self.journal.crashed(report.nodeid)
            self.crashed.add(report.nodeid)
        if report.when == "teardown":
            self.items_done.add(report.nodeid)
        if report.failed:  # for the gate: a case item may fail before its run is recorded; other tests fail as tests
            in_case = is_case_file(self.root / report.nodeid.split("::")[0], self.cases_dir)
            (self.failed_items if in_case else self.other_failures).add(report.nodeid)
        if self.self_test and report.skipped and report.when in ("setup", "call"):
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
            self.self_tests.skip(report.nodeid, reason.removeprefix("Skipped: "))
        record = None
        if report.when == "call" and getattr(report, RESULT_ATTRIBUTE, None):
            record = RunRecord.from_dict(getattr(report, RESULT_ATTRIBUTE))
            self.records[record.nodeid] = record
            node = getattr(report, "node", None)  # xdist's worker controller, on the controller
            if node is not None and dist.is_elsewhere(node.gateway.spec):
                self.journal.finish(record)  # its worker's journal is on another machine: keep a copy here
        if report.when == "call" and getattr(report, SELF_TEST_ATTRIBUTE, None):
            self.self_tests.add(getattr(report, SELF_TEST_ATTRIBUTE))
        if self.progress is not None:
            self.progress.add(report, record)

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(self, report, config):
        """-v names the check that rejected a known-bad solution on its own line; a re-score reports
        a judged, rejected program as "rejected", not as a failure (results.rescore_view)."""
        if self.rescore_dir is not None:
            return rejected_status(report, getattr(report, RESULT_ATTRIBUTE, None), lists_rejections(config))
        word = status_word(getattr(report, SELF_TEST_ATTRIBUTE, None)) if report.when == "call" else None
        return ("passed", ".", (word, {"green": True})) if word and report.passed else None

    def pytest_keyboard_interrupt(self, excinfo):
        self.interrupted = ("interrupted (SIGTERM)" if self.sigterm.received else "interrupted (Ctrl+C)"
                            if excinfo.type is KeyboardInterrupt else f"interrupted ({excinfo.value})")

    def pytest_unconfigure(self, config):
        self.sigterm.restore()

    def pytest_sessionfinish(self, session, exitstatus):
        if self._standin is not None:
            self._standin.stop()
        self.shared.close()
        if self.is_controller:  # what crashed workers' runs left: processes, cgroups, work dirs
            from pytest_autopilot.executors.sandbox import remove_leftovers
            from pytest_autopilot.executors.warm_shared import remove_session_files

            base_dir = self._sandbox.base_dir if self._sandbox else None
            remove_session_files(base_dir)  # first: it may stop a server whose dir remove_leftovers then removes
            remove_leftovers(base_dir)
        self.local.close(controller=self.is_controller)
        if self._journal is not None:
            self._journal.close()
        if self.is_controller and self.cassettes_dir.is_dir():
            remove_stale_partials(self.cassettes_dir)  # a killed worker's half-recorded cassettes
        if self.is_controller and self.self_tests:
            self.self_test_report = self.self_tests.write(
                self.report_dir / "selftest.json", self.run_id, self.started_at,
                datetime.now(timezone.utc).isoformat(timespec="seconds"))
        if not self.is_controller:  # for the controller's provenance: where this worker ran, and its journal
            from pytest_autopilot.results.provenance import this_process

            self.config.workeroutput[dist.WORKEROUTPUT_KEY] = this_process(self.root, self.journal_path)
        if not self.is_controller or self.self_test or self.config.option.collectonly:
            return
        interrupted = bool(self.interrupted) or exitstatus == pytest.ExitCode.INTERRUPTED
        journal_dir = self.report_dir / "journal"
        if not self.records and not journal_dir.is_dir() and not self.not_run:
            return
        unfinished = RunStatus.INCOMPLETE if interrupted else RunStatus.CRASHED
        merged = read_journals(journal_dir, unfinished) if journal_dir.is_dir() else {}
        merged.update(self.records)  # what came back on reports wins; journals fill the gaps
        lost = len(self.crashed - merged.keys())  # died on a worker elsewhere: only its own journal has them
        # a run journalled as started but whose finish never arrived is crashed (or incomplete)
        self.final_records = [merged[k] for k in sorted(merged)]
        self.stop_reason = "; ".join(_stop_reasons(self, session, interrupted, lost)) or None
        from pytest_autopilot.results.report import report_tables, write_report

        not_run = [{"case": case, "error": error} for case, error in sorted(self.not_run.items())]
        self.tables = report_tables(self.final_records)  # for the files and the terminal alike
        self.report_files = write_report(self.report_dir, self.final_records, self.provenance(),
                                         complete=self.stop_reason is None, extended=True, html=True,
                                         not_run=not_run, incomplete_reason=self.stop_reason, tables=self.tables)
        if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):  # pytest's other statuses stand
            from pytest_autopilot.results.gate import session_status

            unrecorded = len(self.failed_items - merged.keys() - self.crashed)
            session.exitstatus, self.gate_line = session_status(
                self.final_records, self.settings.get("fail_on"), self.settings.get("fail_under"),
                len(self.not_run), lost, unrecorded, bool(self.other_failures))

    def pytest_terminal_summary(self, terminalreporter):
        if self.self_test_report is not None:
            terminalreporter.section("autopilot self-test")
            for line in self.self_tests.lines(self.relative(self.self_test_report)):
                terminalreporter.write_line(line)
        records = self.final_records
        if self.recorded_only_line:
            terminalreporter.write_line(self.recorded_only_line)
        if self.tables is None:  # no report was written
            return
        terminalreporter.section("autopilot summary")
        for line in self.tables.terminal_lines():
            terminalreporter.write_line(line)
        crashed = sum(r.status == RunStatus.CRASHED for r in records)
        if crashed:
            terminalreporter.write_line(f"{crashed} run(s) crashed (their worker died); see the report")
        for warning in sorted({w for r in records for w in r.warnings}):  # once, however many runs met it
            terminalreporter.write_line(f"warning: {warning}")
        if self.not_run:
            terminalreporter.write_line(f"not run: {len(self.not_run)} case file(s) could not be loaded "
                                        "(listed under not_run in the report)")
        complete = f" (INCOMPLETE: {self.stop_reason})" if self.stop_reason else ""
        terminalreporter.write_line(f"report{complete}: {self.relative(self.report_dir)}/")
        if self.gate_line:
            terminalreporter.write_line(self.gate_line)

    @pytest.hookimpl(wrapper=True, tryfirst=True, specname="pytest_sessionfinish")
    def pytest_sessionfinish_study_table(self, session, exitstatus):
        """Around the terminal reporter's: a re-score's study table comes after pytest's closing line."""
        result = yield
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if self.tables is not None and reporter is not None:
            from pytest_autopilot.results.study import study_lines

            write_study_table(reporter, study_lines(self.tables.study))
        return result

    def provenance(self) -> dict[str, Any]:
        from pytest_autopilot.results.provenance import provenance

        return provenance(self.ctx, self.final_records, journal=self.journal_path)


def _stop_reasons(autopilot: AutopilotSession, session, interrupted: bool, lost: int) -> list[str]:
    """Why the report is not complete: case files that could not be loaded, a stop at
    -x/--maxfail before every item ran, an interrupt, runs that died with a worker elsewhere."""
    reasons = []
    crashed = sum(r.status == RunStatus.CRASHED for r in autopilot.final_records)
    if crashed:
        reasons.append(f"{crashed} run(s) crashed (their worker died)")
    if lost:
        reasons.append(f"{lost} run(s) died with a worker on another machine: copy its journal (worker_hosts in "
                       f"the provenance) into {autopilot.relative(autopilot.report_dir)}/journal/ and "
                       f"--autopilot-resume {autopilot.run_id}")
    if autopilot.not_run:
        reasons.append(f"{len(autopilot.not_run)} case file(s) could not be loaded (see not_run)")
    maxfail = autopilot.config.getoption("maxfail")
    if session.shouldfail and maxfail and len(autopilot.items_done) < session.testscollected:
        reasons.append("stopped after the first failure (-x)" if maxfail == 1 else
                       f"stopped after {maxfail} failures (--maxfail={maxfail})")
    elif interrupted:
        reasons.append(autopilot.interrupted or "interrupted")
    return reasons


def dump_result(record: RunRecord) -> dict[str, Any]:
    return json.loads(json.dumps(record.to_dict(), default=str))
