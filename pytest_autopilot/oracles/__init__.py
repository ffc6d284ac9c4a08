"""Oracles decide whether an attempt succeeded. Strict oracles check artifacts; the legacy
checks (``oracles.legacy``) reproduce the original paper's so reports can show silent failures.

A strict oracle is a function ``(ctx: OracleContext) -> Verdict``. The built-in ones are
registered by name with ``@register("name")`` in their modules (imported on first lookup, so
collection stays cheap); case files refer to one as ``oracle: {name: ..., params: {...}}``.
A user's conftest adds or overrides oracles through the ``pytest_autopilot_register`` hook,
which fills the session's :class:`OracleRegistry`, never this module's table.

Each built-in oracle declares the params it reads in ``BUILTIN_PARAMS``, here rather than in its
module, so collection checks a case's oracle name and params without importing pandas or numpy.
"""

from __future__ import annotations

import importlib
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from pytest_autopilot.core.records import Category, Check, ExecResult, Verdict

Oracle = Callable[["OracleContext"], Verdict]
# Modules defining the built-in oracles.
BUILTIN_MODULES = ("pytest_autopilot.oracles.generic", "pytest_autopilot.oracles.dp_plan",
                   "pytest_autopilot.oracles.dp_operation", "pytest_autopilot.oracles.dp_clean_split",
                   "pytest_autopilot.oracles.mc", "pytest_autopilot.oracles.vision", "pytest_autopilot.oracles.ardsg")
_BUILTIN: dict[str, Oracle] = {}


@dataclass(frozen=True)
class Params:
    """The param names an oracle reads; the ``required`` ones a case must give."""

    known: frozenset[str]
    required: frozenset[str] = frozenset()


def _params(optional: str, required: str = "") -> Params:
    return Params(frozenset(optional.split()) | frozenset(required.split()), frozenset(required.split()))


BUILTIN_PARAMS: dict[str, Params] = {
    "output_files": _params("files"),
    "dp_plan": _params("operations name_pattern min_description_chars required"),
    "dp_operation": _params("label output_dir nan_policy missing_keywords duplicate_keywords split_keywords "
                            "train_pattern test_pattern"),
    "dp_clean_split": _params("input train test label channels valid_range test_fraction min_class_rows "
                              "class_slack_rows ratio_tolerance scale_tolerance property_examples check_determinism"),
    "mc_tflite": _params("integer_weights ops min_agreement max_accuracy_drop max_bytes tflm",
                         required="model heldout input_dtype output_dtype"),
    "vision_detection": _params("detections outputs score_threshold label_offset iou min_precision min_recall "
                                "min_label_agreement min_annotated mark_threshold min_mark_fraction "
                                "max_unannotated_change external_inputs run_info",
                                required="model labels video output_video"),
    "ardsg_firmware": _params("vectors set line_pattern baud baud_tolerance require_run spec_baud spec_step hidden"),
    "ardsg_app_spec": _params("sensor libraries classes input_size output_size min_arena baud_rate"),
}

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

    if name not in BUILTIN_PARAMS:
        raise KeyError(f"built-in oracle {name!r} has no entry in oracles.BUILTIN_PARAMS; declare its params there")

    def decorate(func: Oracle) -> Oracle:
        _BUILTIN[name] = func
        return func

    return decorate


class OracleRegistry:
    """The session's oracles: the built-in ones plus those a conftest registered."""

    def __init__(self):
        self._added: dict[str, Oracle] = {}
        self._added_params: dict[str, Params | None] = {}

    def register(self, name: str, oracle: Oracle, params: Iterable[str] | None = None) -> None:
        """``params``: the param names the oracle reads, checked at collection (None: not checked)."""
        self._added[name] = oracle
        self._added_params[name] = None if params is None else Params(frozenset(params))

    def names(self) -> list[str]:
        return sorted({*BUILTIN_PARAMS, *self._added})

    def problem(self, name: str, params: Mapping[str, Any]) -> tuple[str, str] | None:
        """(field under ``oracle``, what is wrong) when a case names an unknown oracle, a param the
        oracle does not read, or leaves out a required one; None when they fit."""
        if name in self._added:
            declared = self._added_params[name]
        elif name in BUILTIN_PARAMS:
            declared = BUILTIN_PARAMS[name]
        else:
            return "name", f"unknown oracle {name!r}; known: {', '.join(self.names())} (or register one in conftest.py)"
        if declared is None:
            return None
        for key in sorted(params):
            if key not in declared.known:
                return (f"params.{key}", f"not a param of oracle {name}; remove it or check its spelling "
                                         f"(known: {', '.join(sorted(declared.known))})")
        for key in sorted(declared.required - set(params)):
            return f"params.{key}", f"required by oracle {name}; add it"
        return None

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
