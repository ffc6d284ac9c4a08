"""Oracles decide whether an attempt succeeded. Strict oracles check artifacts; the legacy
checks (``oracles.legacy``) reproduce the original paper's so reports can show silent failures.

A strict oracle is a function ``(ctx: OracleContext) -> Verdict``. The built-in ones are declared
by name in ``BUILTIN`` ("module:function", imported on first use, so collection stays cheap);
case files refer to one as ``oracle: {name: ..., params: {...}}``. Each session copies the
declarations into its own registry (``core.registry``), where a conftest adds or overrides
oracles through the ``pytest_autopilot_register`` hook.

Each oracle may declare a pydantic model of its params (``oracles.params``); collection validates
a case's params with it. The built-in ones are declared in ``BUILTIN_PARAMS`` as "module:Class",
here rather than in their oracle modules, so checking a case imports pydantic models only,
never pandas or numpy.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Mapping

from pytest_autopilot.core.records import Category, Check, ExecResult, Verdict
from pytest_autopilot.core.registry import Registry, resolve

if TYPE_CHECKING:
    from pydantic import BaseModel

Oracle = Callable[["OracleContext"], Verdict]
_ORACLES = "pytest_autopilot.oracles"
# Oracle name -> "module:function". A new built-in oracle adds one line here and one in BUILTIN_PARAMS.
BUILTIN: Mapping[str, str] = MappingProxyType({
    "output_files": f"{_ORACLES}.generic:output_files",
    "dp_plan": f"{_ORACLES}.dp_plan:dp_plan",
    "dp_operation": f"{_ORACLES}.dp_operation:dp_operation",
    "dp_clean_split": f"{_ORACLES}.dp_clean_split:dp_clean_split",
    "dp_reference": f"{_ORACLES}.dp_reference:dp_reference",
    "mc_tflite": f"{_ORACLES}.mc:mc_tflite",
    "vision_detection": f"{_ORACLES}.vision:vision_detection",
    "ardsg_firmware": f"{_ORACLES}.ardsg:ardsg_firmware",
    "ardsg_app_spec": f"{_ORACLES}.ardsg:ardsg_app_spec",
})
_PARAMS = f"{_ORACLES}.params"
# Oracle name -> its params model, "module:Class", imported on the first check (its module imports
# pydantic only).
BUILTIN_PARAMS: Mapping[str, str] = MappingProxyType({
    "output_files": f"{_PARAMS}:OutputFilesParams",
    "dp_plan": f"{_PARAMS}:DpPlanParams",
    "dp_operation": f"{_PARAMS}:DpOperationParams",
    "dp_clean_split": f"{_PARAMS}:DpCleanSplitParams",
    "dp_reference": f"{_ORACLES}.dp_reference_params:DpReferenceParams",
    "mc_tflite": f"{_PARAMS}:McTfliteParams",
    "vision_detection": f"{_PARAMS}:VisionDetectionParams",
    "ardsg_firmware": f"{_PARAMS}:ArdsgFirmwareParams",
    "ardsg_app_spec": f"{_PARAMS}:ArdsgAppSpecParams",
})
# The paper's checks (oracles.legacy) a stage or a step's ``legacy:`` names: name -> "module:function".
BUILTIN_LEGACY: Mapping[str, str] = MappingProxyType({
    "exit_code": f"{_ORACLES}.legacy:legacy_verdict",
    "compiles": f"{_ORACLES}.legacy:legacy_compiles",
})
# A model, "module:Class", or (kept for conftests) an iterable of param names read, none required.
ParamsDeclaration = Any


def params_model(declared: ParamsDeclaration) -> type[BaseModel] | None:
    """The pydantic model a declaration stands for (None: the params are not checked)."""
    from pydantic import BaseModel, create_model  # not at import: the plugin loads this module in every project

    if declared is None or isinstance(declared, str) or (isinstance(declared, type) and issubclass(declared, BaseModel)):
        return resolve(declared)
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
    shared: Any = None  # the session's SharedResources: where an oracle memoises a deterministic result


def get(name: str) -> Oracle:
    """A built-in oracle by name (tests and tools; runs use the session's registry)."""
    return Registry("oracle", BUILTIN).get(name)


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
