"""The session object (registered as a plugin): settings, selected LLMs, the sandbox, the
journal, the stand-in server, and the results gathered for the report."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from . import collect
from .journal import Journal, read_journals
from .llms import LLMConfigError, resolve_llms
from .records import RunRecord, RunStatus
from .runner import relative_to
from .settings import Settings

RESULT_PROPERTY = "autopilot_run"


def _new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


class AutopilotSession:
    def __init__(self, config):
        self.config = config
        self.settings = Settings(config)
        self.root = Path(config.rootpath)
        self.self_test = bool(self.settings.get("self_test"))
        try:
            models = self.root / self.settings.get("models")
            self.llms = resolve_llms(self.settings.get("llm"), models)
        except LLMConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
        self.cases_dir = self.root / self.settings.get("cases_dir")
        self.prompts_dir = self.root / self.settings.get("prompts_dir")
        self.cassettes_dir = self.root / self.settings.get("cassettes_dir")
        self.hardware_dir = self.root / self.settings.get("hardware_dir")
        workerinput = getattr(config, "workerinput", None)
        self.worker_id = workerinput["workerid"] if workerinput else "master"
        self.is_controller = workerinput is None
        self.run_id = ((workerinput or {}).get("autopilot_run_id") or self.settings.get("resume")
                       or self.settings.get("run_id") or _new_run_id())
        self.shard = _parse_shard(self.settings.get("shard"))
        rescore = self.settings.get("rescore")
        self.rescore_dir = (self.root / rescore).resolve() if rescore else None
        if self.rescore_dir is not None and not self.rescore_dir.is_dir():
            raise pytest.UsageError(f"--autopilot-rescore {rescore}: no such folder")
        self.report_dir = self.root / self.settings.get("reports_dir") / self.run_id
        self.started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.records: dict[str, RunRecord] = {}
        self._journal: Journal | None = None
        self._sandbox = None
        self._vcr = None
        self._standin = None
        self._warm = None
        self.interrupted = False

    # lazily built run-time parts: collection must stay cheap and side-effect free
    @property
    def journal(self) -> Journal:
        if self._journal is None:
            self._journal = Journal(self.report_dir / "journal" / f"{self.worker_id}.jsonl")
        return self._journal

    @property
    def sandbox(self):
        if self._sandbox is None:
            from .sandbox import Sandbox

            self._sandbox = Sandbox(self.base_limits)
        return self._sandbox

    @property
    def warm_toolchain(self):
        """One TensorFlow-preloaded fork server per worker, started on first use."""
        if self._warm is None:
            from .warm import WarmPythonToolchain

            self._warm = WarmPythonToolchain(self.sandbox)
        return self._warm

    @property
    def base_limits(self):
        from .sandbox import Limits

        return Limits()

    @property
    def vcr(self):
        if self._vcr is None:
            from .cassettes import make_vcr

            self._vcr = make_vcr(self.settings.get("record_mode"), self.cassettes_dir)
        return self._vcr

    def standin_url(self, case_key: str, case) -> str:
        if self._standin is None:
            from .standin import StandinServer

            self._standin = StandinServer({}).start()
        self._standin.cases[case_key] = case
        return self._standin.url

    def relative(self, path: Path) -> str:
        return relative_to(self.root, path)

    # hooks
    def pytest_collect_file(self, file_path: Path, parent):
        if collect.is_case_file(file_path, self.cases_dir):
            return collect.CaseModule.from_parent(parent, path=file_path)
        return None

    def pytest_generate_tests(self, metafunc):
        collect.parametrize(metafunc, self)

    def pytest_collection_modifyitems(self, config, items):
        """Sharding and resuming: both deselect deterministically, so every xdist worker agrees."""
        done = self._finished_in_journal() if self.settings.get("resume") else set()
        keep, drop = [], []
        for item in items:
            in_shard = self.shard is None or _shard_of(item.nodeid, self.shard[1]) == self.shard[0]
            (keep if in_shard and item.nodeid not in done else drop).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep

    def _finished_in_journal(self) -> set[str]:
        journal_dir = self.report_dir / "journal"
        if not journal_dir.is_dir():
            raise pytest.UsageError(f"--autopilot-resume {self.run_id}: no journal at {self.relative(journal_dir)}")
        runs = read_journals(journal_dir)
        return {nodeid for nodeid, r in runs.items() if r.status not in (RunStatus.CRASHED, RunStatus.INCOMPLETE)}

    def pytest_runtest_logreport(self, report):
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if name == RESULT_PROPERTY:
                record = RunRecord.from_dict(value)
                self.records[record.nodeid] = record

    def pytest_keyboard_interrupt(self, excinfo):
        self.interrupted = True

    def pytest_sessionfinish(self, session, exitstatus):
        if self._standin is not None:
            self._standin.stop()
        if self._warm is not None:
            self._warm.close()
        if "pytest_autopilot.remote" in sys.modules:  # SSH connections and harness-run sshds
            sys.modules["pytest_autopilot.remote"].close_all()
        if self._journal is not None:
            self._journal.close()
        if not self.is_controller or self.self_test:
            return
        interrupted = self.interrupted or exitstatus == pytest.ExitCode.INTERRUPTED
        journal_dir = self.report_dir / "journal"
        if not self.records and not journal_dir.is_dir():
            return
        unfinished = RunStatus.INCOMPLETE if interrupted else RunStatus.CRASHED
        merged = read_journals(journal_dir, unfinished) if journal_dir.is_dir() else {}
        merged.update(self.records)  # what came back on reports wins; journals fill the gaps
        # a run journalled as started but whose finish never arrived is crashed (or incomplete)
        self.final_records = [merged[k] for k in sorted(merged)]
        from .report import write_report

        self.report_files = write_report(self.report_dir, self.final_records, self.provenance(),
                                         complete=not interrupted, extended=True, html=True)

    def pytest_terminal_summary(self, terminalreporter):
        records = getattr(self, "final_records", None)
        if not records:
            return
        from .report import terminal_lines
        from .stats import runs_frame, summarise

        terminalreporter.section("autopilot summary")
        for line in terminal_lines(summarise(runs_frame(records))):
            terminalreporter.write_line(line)
        crashed = sum(r.status == RunStatus.CRASHED for r in records)
        if crashed:
            terminalreporter.write_line(f"{crashed} run(s) crashed (their worker died); see the report")
        complete = "" if self.report_files and not self.interrupted else " (INCOMPLETE: interrupted)"
        terminalreporter.write_line(f"report{complete}: {self.relative(self.report_dir)}/")

    def provenance(self) -> dict[str, Any]:
        from importlib import metadata

        versions = {}
        for dist in ("pytest-autopilot", "pytest", "pytest-xdist", "litellm", "vcrpy", "pandas", "numpy",
                     "scipy", "hypothesis", "pydantic", "jinja2"):
            try:
                versions[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                versions[dist] = None
        case_files = sorted({r.nodeid.split("::")[0] for r in self.final_records})
        hashes: dict[str, Any] = {}
        for rel in case_files:
            try:
                from .cases import load_case

                hashes[rel] = load_case(self.root / rel, self.prompts_dir, self.hardware_dir).file_hashes()
            except Exception as exc:  # a case edited mid-run: say so rather than lose the report
                hashes[rel] = f"unavailable: {exc}"
        models = {r.model_id: {"model": r.model, "params": r.params, "scripted": r.scripted}
                  for r in self.final_records}
        extra = {"shard": f"{self.shard[0]}/{self.shard[1]}" if self.shard else None,
                 "resumed": bool(self.settings.get("resume")),
                 "rescored_archive": self.relative(self.rescore_dir) if self.rescore_dir else None}
        return {
            "run_id": self.run_id,
            "started_at": self.started_at,
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "versions": versions,
            "toolchains": {"python": sys.version.split()[0]},
            "git_commit": _git_commit(self.root),
            "args": list(self.config.invocation_params.args),
            "record_mode": self.settings.get("record_mode"),
            "models": models,
            "scripted_standin": any(m["scripted"] for m in models.values()),
            "case_hashes": hashes,
            "workers": os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"),
            **extra,
        }


def _parse_shard(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    try:
        index, count = (int(part) for part in value.split("/"))
    except ValueError:
        index = count = 0
    if not 1 <= index <= count:
        raise pytest.UsageError(f"--autopilot-shard {value!r}: expected I/N with 1 <= I <= N, e.g. 2/4")
    return index, count


def _shard_of(nodeid: str, count: int) -> int:
    """1-based shard of an item: a hash of its id, so it does not depend on what else is collected."""
    return int(hashlib.sha256(nodeid.encode()).hexdigest()[:12], 16) % count + 1


def _git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


class XdistHooks:
    """Registered only when xdist is active: hands the run id to every worker."""

    def __init__(self, autopilot: AutopilotSession):
        self.autopilot = autopilot

    def pytest_configure_node(self, node):
        node.workerinput["autopilot_run_id"] = self.autopilot.run_id


def dump_result(record: RunRecord) -> dict[str, Any]:
    return json.loads(json.dumps(record.to_dict(), default=str))
