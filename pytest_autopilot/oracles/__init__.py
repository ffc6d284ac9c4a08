"""Oracles decide whether an attempt succeeded. Strict oracles check artifacts; the legacy
oracle reproduces the original paper's check so reports can show silent failures.

A strict oracle is a function ``(ctx: OracleContext) -> Verdict`` registered by name with
``@register("name")``; case files refer to it as ``oracle: {name: ..., params: {...}}``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..records import Category, Check, ExecResult, Verdict

# Modules defining oracles, imported on first lookup so collection stays cheap.
_ORACLE_MODULES = ("pytest_autopilot.oracles.generic", "pytest_autopilot.oracles.dp", "pytest_autopilot.oracles.mc",
                  "pytest_autopilot.oracles.vision", "pytest_autopilot.oracles.ardsg")
_REGISTRY: dict[str, Callable[["OracleContext"], Verdict]] = {}


@dataclass
class OracleContext:
    """Everything an oracle may look at after one execution."""

    workdir: Path  # the sandbox work dir after the run: the artifacts are here
    execution: ExecResult | None  # None for json steps (nothing ran)
    answer: Any  # the extracted code (str) or, for json steps, the parsed JSON
    params: dict[str, Any]  # the case's oracle params
    case_dir: Path
    assets: dict[str, Path]  # asset name -> absolute path
    workspace: dict[str, str]  # sandbox path -> asset name, as laid out before the run
    sandbox: Any = None  # pytest_autopilot.sandbox.Sandbox, for oracles that re-run the code
    limits: Any = None  # the sandbox Limits of the case
    item: dict[str, Any] | None = None  # the per-item step's item (e.g. a plan operation)
    manifest: Any = None  # the answer's JSON manifest, for steps with manifest: true
    extra: dict[str, Any] = field(default_factory=dict)


def register(name: str):
    def decorate(func: Callable[[OracleContext], Verdict]):
        _REGISTRY[name] = func
        return func

    return decorate


def get(name: str) -> Callable[[OracleContext], Verdict]:
    for module in _ORACLE_MODULES:  # oracle modules import their heavy dependencies lazily
        if name in _REGISTRY:
            break
        importlib.import_module(module)
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown oracle {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


LEGACY_MARKERS = ("error:", "exception:", "traceback:", "failed:")


def legacy_verdict(execution: ExecResult | None) -> Verdict:
    """The original's check: exit code 0 and no error marker in the output (case-insensitive)."""
    if execution is None:
        return Verdict.from_checks("legacy", [Check("answer_parsed", True)])
    output = (execution.stdout + "\n" + execution.stderr).lower()
    checks = [Check("exit_code_0", execution.returncode == 0, f"exit code {execution.returncode}")]
    found = [m for m in LEGACY_MARKERS if m in output]
    checks.append(Check("no_error_markers", not found, ", ".join(found)))
    return Verdict.from_checks("legacy", checks)


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
        return Check("exit_code_0", False, "the program was killed at the time limit")
    if execution.limit_hit:
        return Check("exit_code_0", False, f"the program hit the {execution.limit_hit} limit")
    ok = execution.returncode == 0
    return Check("exit_code_0", ok, "" if ok else f"exit code {execution.returncode}; {stderr_tail(execution.stderr)}")
