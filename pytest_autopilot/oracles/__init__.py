"""Oracles decide whether an attempt succeeded. Strict oracles check artifacts; the legacy
checks (``oracles.legacy``) reproduce the original paper's so reports can show silent failures.

A strict oracle is a function ``(ctx: OracleContext) -> Verdict``. The built-in ones are
registered by name with ``@register("name")`` in their modules (imported on first lookup, so
collection stays cheap); case files refer to one as ``oracle: {name: ..., params: {...}}``.
A user's conftest adds or overrides oracles through the ``pytest_autopilot_register`` hook,
which fills the session's :class:`OracleRegistry`, never this module's table.

Each oracle may declare a pydantic model of its params (``oracles.params``); collection validates
a case's params with it. The built-in ones are listed in ``BUILTIN_PARAMS`` as "module:Class",
here rather than in their oracle modules, so checking a case imports pydantic models only,
never pandas or numpy.
"""

from __future__ import annotations

import importlib
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from pytest_autopilot.core.records import Category, Check, ExecResult, Verdict
from pytest_autopilot.core.util import did_you_mean, field_errors

if TYPE_CHECKING:
    from pydantic import BaseModel

Oracle = Callable[["OracleContext"], Verdict]
# Modules defining the built-in oracles.
BUILTIN_MODULES = ("pytest_autopilot.oracles.generic", "pytest_autopilot.oracles.dp_plan",
                   "pytest_autopilot.oracles.dp_operation", "pytest_autopilot.oracles.dp_clean_split",
                   "pytest_autopilot.oracles.dp_reference",
                   "pytest_autopilot.oracles.mc", "pytest_autopilot.oracles.vision", "pytest_autopilot.oracles.ardsg")
_BUILTIN: dict[str, Oracle] = {}


_PARAMS = "pytest_autopilot.oracles.params"
# Oracle name -> its params model, "module:Class", imported on the first check. A new built-in
# oracle adds one line (its model module imports pydantic only).
BUILTIN_PARAMS: dict[str, str] = {
    "output_files": f"{_PARAMS}:OutputFilesParams",
    "dp_plan": f"{_PARAMS}:DpPlanParams",
    "dp_operation": f"{_PARAMS}:DpOperationParams",
    "dp_clean_split": f"{_PARAMS}:DpCleanSplitParams",
    "dp_reference": "pytest_autopilot.oracles.dp_reference_params:DpReferenceParams",
    "mc_tflite": f"{_PARAMS}:McTfliteParams",
    "vision_detection": f"{_PARAMS}:VisionDetectionParams",
    "ardsg_firmware": f"{_PARAMS}:ArdsgFirmwareParams",
    "ardsg_app_spec": f"{_PARAMS}:ArdsgAppSpecParams",
}
# A model, "module:Class", or (kept for conftests) an iterable of param names read, none required.
ParamsDeclaration = Any


def params_model(declared: ParamsDeclaration) -> type[BaseModel] | None:
    """The pydantic model a declaration stands for (None: the params are not checked)."""
    from pydantic import BaseModel, create_model  # not at import: the plugin loads this module in every project

    if declared is None or (isinstance(declared, type) and issubclass(declared, BaseModel)):
        return declared
    if isinstance(declared, str):
        module, _, attr = declared.partition(":")
        return getattr(importlib.import_module(module), attr)
    from pytest_autopilot.oracles.params import OracleParams

    return create_model("DeclaredParams", __base__=OracleParams, **{n: (Any, None) for n in sorted(declared)})


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
        raise KeyError(f"built-in oracle {name!r} has no entry in oracles.BUILTIN_PARAMS; add its params model there")

    def decorate(func: Oracle) -> Oracle:
        _BUILTIN[name] = func
        return func

    return decorate


class OracleRegistry:
    """The session's oracles: the built-in ones plus those a conftest registered."""

    def __init__(self):
        self._added: dict[str, Oracle] = {}
        self._declared: dict[str, ParamsDeclaration] = dict(BUILTIN_PARAMS)
        self._models: dict[str, type[BaseModel] | None] = {}

    def register(self, name: str, oracle: Oracle, params: ParamsDeclaration = None) -> None:
        """``params``: the oracle's pydantic params model (or "module:Class", or the param names it
        reads), validated against each case at collection. Without one, its params are not checked."""
        self._added[name] = oracle
        self._declared[name] = params
        self._models.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._declared)

    def params_model(self, name: str) -> type[BaseModel] | None:
        if name not in self._models:
            self._models[name] = params_model(self._declared[name])
        return self._models[name]

    def problem(self, name: str, params: Mapping[str, Any], case: Mapping[str, Any] | None = None) -> tuple[str, str] | None:
        """The first of ``problems``, with how many more there are; None when the params fit."""
        found = self.problems(name, params, case)
        if not found:
            return None
        more = f" (+{len(found) - 1} more)" if len(found) > 1 else ""
        return found[0][0], found[0][1] + more

    def problems(self, name: str, params: Mapping[str, Any], case: Mapping[str, Any] | None = None) -> list[tuple[str, str]]:
        """Each (field under ``oracle``, what is wrong and the fix) when a case names an unknown oracle
        or params its model rejects. ``case`` ({"assets": [...], "workspace": [...]}) lets the model
        check params that name the case's files."""
        if name not in self:
            guess = did_you_mean(name, self.names())
            return [("name", f"unknown oracle {name!r}; known: {', '.join(self.names())} (or register one in "
                             "conftest.py)" + (f"; did you mean {guess!r}?" if guess else ""))]
        model = self.params_model(name)
        if model is None:
            return []
        from pydantic import ValidationError

        try:
            model.model_validate(dict(params), context=dict(case) if case is not None else None)
        except ValidationError as exc:
            found = []
            for err in field_errors(exc, model):
                hint = err.hint
                if err.kind == "extra_forbidden" and len(err.loc) == 1:
                    hint = hint.replace("unknown field", f"not a param of oracle {name}", 1)
                elif err.kind == "missing":
                    hint = f"required by oracle {name}; add it" if len(err.loc) == 1 else "required; add it"
                found.append(("".join(["params", *(f".{part}" for part in err.loc if part != "[key]")]), hint))
            return found
        return []

    def __contains__(self, name: str) -> bool:
        return name in self._declared

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
