"""Oracles decide whether an attempt succeeded. Strict oracles check artifacts; the legacy
checks (``oracles.legacy``) reproduce the original paper's so reports can show silent failures.

A strict oracle is a function ``(ctx: OracleContext) -> Verdict``. The built-in ones are
registered by name with ``@register("name")`` in their modules (imported on first lookup, so
collection stays cheap); case files refer to one as ``oracle: {name: ..., params: {...}}``.
A user's conftest adds or overrides oracles through the ``pytest_autopilot_register`` hook,
which fills the session's :class:`OracleRegistry`, never this module's table.
"""

from __future__ import annotations

import importlib
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from pytest_autopilot.core.records import Category, Check, ExecResult, Verdict

Oracle = Callable[["OracleContext"], Verdict]
# Modules defining the built-in oracles.
BUILTIN_MODULES = ("pytest_autopilot.oracles.generic", "pytest_autopilot.oracles.dp_plan",
                   "pytest_autopilot.oracles.dp_operation", "pytest_autopilot.oracles.dp_clean_split",
                   "pytest_autopilot.oracles.mc", "pytest_autopilot.oracles.vision", "pytest_autopilot.oracles.ardsg")
_BUILTIN: dict[str, Oracle] = {}

# ctx.run(code, files, prefix) -> a context manager yielding (ExecResult, work dir): the code
# re-run by the case's own executor on other inputs; the work dir is removed on exit.
Rerun = Callable[[str, Mapping[str, "Path | bytes"], str], AbstractContextManager]


@dataclass
class OracleContext:
    """Everything an oracle may look at after one execution, passed by the loop."""

    workdir: Path  # the sandbox work dir after the run: the artifacts are here
    execution: ExecResult | None  # None for json steps (nothing ran)
    answer: Any  # the extracted code (str) or, for json steps, the parsed JSON
    params: dict[str, Any]  # the case's oracle params
    case_dir: Path
    assets: dict[str, Path]  # asset name -> absolute path
    workspace: dict[str, str]  # sandbox path -> asset name, as laid out before the run
    limits: Any = None  # the sandbox Limits of the case
    sandbox: Any = None  # executors.sandbox.Sandbox, for harness-side probes (e.g. TFLM)
    item: dict[str, Any] | None = None  # the per-item step's item (e.g. a plan operation)
    manifest: Any = None  # the answer's JSON manifest, for steps with manifest: true
    inputs: dict[str, Any] = field(default_factory=dict)  # work-dir path -> what was laid out before the run
    board: Any = None  # cases.boards.Board of the case, or None
    steps: dict[str, Any] = field(default_factory=dict)  # earlier steps' accepted answers, by step name
    run: Rerun | None = None  # re-run code with the case's executor (property re-runs, hidden vectors)


def register(name: str):
    """Register a built-in oracle (used by this package's modules)."""

    def decorate(func: Oracle) -> Oracle:
        _BUILTIN[name] = func
        return func

    return decorate


class OracleRegistry:
    """The session's oracles: the built-in ones plus those a conftest registered."""

    def __init__(self):
        self._added: dict[str, Oracle] = {}

    def register(self, name: str, oracle: Oracle) -> None:
        self._added[name] = oracle

    def names(self) -> list[str]:
        _import_builtins()
        return sorted({*_BUILTIN, *self._added})

    def __contains__(self, name: str) -> bool:
        return name in self._added or name in self.names()

    def get(self, name: str) -> Oracle:
        if name in self._added:
            return self._added[name]
        for module in BUILTIN_MODULES:  # oracle modules import their heavy dependencies lazily
            if name in _BUILTIN:
                break
            importlib.import_module(module)
        try:
            return _BUILTIN[name]
        except KeyError:
            raise KeyError(f"unknown oracle {name!r}; known: {', '.join(self.names())}") from None


def _import_builtins() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def get(name: str) -> Oracle:
    """A built-in oracle by name (tests and tools; runs use the session's registry)."""
    return OracleRegistry().get(name)


def categorised_verdict(oracle: str, checks: list[Check], artifact_checks: set[str],
                        execution: ExecResult | None = None) -> Verdict:
    """A verdict whose category names the most basic failure: the program's own failure
    (timeout, resource limit, runtime error), then a missing artifact, then wrong content."""
    failed = {c.name for c in checks if not c.passed}
    category = None
    if failed:
        if "exit_code_0" in failed and execution is not None:
            category = (Category.TIMEOUT if execution.timed_out else
                        Category.RESOURCE_LIMIT if execution.limit_hit else Category.RUNTIME_ERROR)
        elif failed & artifact_checks:
            category = Category.ARTIFACT_MISSING
        else:
            category = Category.SEMANTIC_MISMATCH
    return Verdict.from_checks(oracle, checks, category)


def stderr_tail(text: str, chars: int = 400) -> str:
    """The end of a program's stderr for a check detail (where Python puts the exception)."""
    text = (text or "").strip()
    return ("stderr: ..." + text[-chars:]) if len(text) > chars else (f"stderr: {text}" if text else "no stderr")


def exit_check(execution: ExecResult | None) -> Check | None:
    """The ``exit_code_0`` check shared by program-running oracles (None when nothing ran)."""
    if execution is None:
        return None
    if execution.timed_out:
        return Check("exit_code_0", False, "the program was killed at the time limit", restates_run=True)
    if execution.limit_hit:
        return Check("exit_code_0", False, f"the program hit the {execution.limit_hit} limit", restates_run=True)
    ok = execution.returncode == 0
    return Check("exit_code_0", ok, "" if ok else f"exit code {execution.returncode}; {stderr_tail(execution.stderr)}",
                 restates_run=True)
