"""Declarative case files: the YAML schema, loading, and one-line validation errors.

A case file lives in ``cases/`` and names everything a pipeline task needs: its stage,
assets (paths relative to the case file), prompt templates (relative to ``prompts/``),
steps with their oracles, repair settings, timeouts, limits, required toolchains, the
reference / known-bad solutions for self-test and the stand-in's scripted answer order.
Everything it names is checked when it is loaded (``load_case``, ``case_checks``, which collection
gives the session's registries), each problem one line naming the file, the field and the fix.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pytest_autopilot.cases import case_checks, context_refs, defaults
from pytest_autopilot.cases.boards import Software
from pytest_autopilot.core.errors import HarnessError
from pytest_autopilot.core.records import CODE_CHARS, Category
from pytest_autopilot.core.stages import STAGES
from pytest_autopilot.core.util import did_you_mean, field_errors


class CaseError(HarnessError):
    """A case file is invalid; the message is one line naming the file, the field and the fix."""

    def __init__(self, message: str):
        super().__init__(Category.HARNESS_ERROR, message)


def _inside_sandbox(paths):
    """``paths`` (a list, or a mapping's keys) when each is relative and stays inside the sandbox."""
    for rel in paths:
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise ValueError(f"{rel!r} must be a relative path inside the sandbox")
    return paths


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OracleSpec(_Strict):
    name: str = Field(description="registered strict oracle, e.g. dp_clean_split")
    params: dict[str, Any] = Field(default_factory=dict)  # checked by the oracle's params model; ${context.key} allowed


class StepSpec(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    kind: Literal["code", "json"] = "code"
    language: str = "python"  # fenced-block language the answer must use
    prompt: str  # template path relative to prompts/
    repair_prompt: str = "common/repair.j2"  # stateless repair: task, previous code and error in one message
    feedback_prompt: str = "common/feedback.j2"  # conversation repair: the user turn after a failed answer
    oracle: OracleSpec
    # "for_each: plan.operations" runs this step once per item of an earlier step's JSON answer
    for_each: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*\.[A-Za-z0-9_]+$")
    manifest: bool = False  # the answer must also carry a ```json block naming files it wrote
    legacy: str | None = None  # a registered legacy check (oracles.legacy); default: the stage's (core.stages)
    chain_outputs: bool = False  # each item's sandbox starts with the previous item's outputs
    # a registered executor for this step alone (a pipeline: pandas, then TensorFlow, then firmware);
    # default: the case's
    executor: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_-]*$")
    # files (work-dir paths) the accepted program wrote that every later step's sandbox starts with,
    # at the same paths: the run's own artifacts, never a reference's
    outputs: list[str] = Field(default_factory=list)

    @field_validator("outputs")
    @classmethod
    def _relative_outputs(cls, value: list[str]) -> list[str]:
        return _inside_sandbox(value)

    @model_validator(mode="after")
    def _outputs_once(self) -> "StepSpec":
        if self.outputs and self.for_each:
            raise ValueError("outputs: a for_each step passes its items' files on with chain_outputs and a manifest")
        return self


class RepairSpec(_Strict):
    max_attempts: int = Field(default=5, ge=1, le=50)
    error_chars: int = Field(default=2000, ge=100, le=100_000)
    code_chars: int = Field(default=CODE_CHARS, ge=200, le=1_000_000)
    strategy: list[str] | None = None  # registered repair strategies (loop.strategies); default: stateless


class TimeoutSpec(_Strict):
    run_s: float = Field(default=60.0, gt=0)
    llm_s: float | None = Field(default=None, gt=0)  # default by model kind: llm.profiles


class LimitSpec(_Strict):
    cpu_s: int | None = Field(default=None, gt=0)
    memory_mb: int | None = Field(default=None, gt=0)
    file_size_mb: int | None = Field(default=None, gt=0)
    processes: int | None = Field(default=None, gt=0)


class RequiresSpec(_Strict):
    toolchains: list[str] = Field(default_factory=lambda: ["python"])
    targets: list[str] = Field(default_factory=list)
    on_missing: Literal["fail", "skip"] | None = None  # None: --autopilot-missing-toolchain decides


class BadSolution(_Strict):
    file: str  # relative to the case file
    why: str  # what is wrong with it: shown when an oracle accepts it
    caught_by: str | None = None  # the check that must reject it (self-test fails if another one does)


class GoodSolution(_Strict):
    file: str  # relative to the case file
    why: str  # what it does differently from the reference that the oracle must still accept


class SolutionSpec(_Strict):
    """Reference, other known-good and known-bad answers, per step (``step`` or ``step/item``)."""

    reference: dict[str, str]  # step key -> file relative to the case file
    # correct programs written differently (issue 23): the self-test must accept these too
    also_good: dict[str, list[GoodSolution]] = Field(default_factory=dict)
    bad: dict[str, list[BadSolution]] = Field(default_factory=dict)


TIERS = (1, 2, 3)
TIER_MEANINGS = {1: "a single bounded sub-task that small models sometimes solve", 2: "a whole stage task",
                 3: "headroom: hard because of a real constraint"}


def tier_marker(tier: int) -> str:
    """The pytest marker of a tier: ``-m tier1``."""
    return f"tier{tier}"


class CaseSpec(_Strict):
    stage: str  # a name of the stage table (core.stages)
    description: str
    # difficulty tier (marker tier1/tier2/tier3, a column of every report table); shipped cases declare it
    tier: Literal[TIERS] = 2  # type: ignore[valid-type]
    board: str | None = None  # a hardware/<board>.yaml entry: budgets, build ids, simulator
    environment: Software | None = None  # the software its programs run against; default: the board's software
    # a registered executor (executors.BUILTIN: python, warm-tensorflow, warm-pandas, ssh, arduino,
    # arm-none-eabi, or a conftest's); default: the stage's (core.stages). Checked against the session's registry at collection.
    executor: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_-]*$")
    assets: dict[str, str] = Field(default_factory=dict)  # name -> path relative to the case file
    workspace: dict[str, str] = Field(default_factory=dict)  # sandbox path -> asset name
    context: dict[str, Any] = Field(default_factory=dict)  # extra template variables, also ${context.key} in oracle params
    steps: list[StepSpec] = Field(min_length=1)
    repair: RepairSpec = RepairSpec()
    timeouts: TimeoutSpec = TimeoutSpec()
    limits: LimitSpec = LimitSpec()
    requires: RequiresSpec = RequiresSpec()
    solutions: SolutionSpec
    # scripted stand-in: per repetition (cycled), per step key, the solution names served in order
    standin: list[dict[str, list[str]]] = Field(min_length=1)

    @field_validator("stage")
    @classmethod
    def _known_stage(cls, value: str) -> str:
        if value not in STAGES:
            raise ValueError(f"unknown stage {value!r}; expected one of {', '.join(STAGES)}")
        return value

    @field_validator("workspace")
    @classmethod
    def _relative_workspace(cls, value: dict[str, str]) -> dict[str, str]:
        return _inside_sandbox(value)

    @model_validator(mode="after")
    def _cross_references(self) -> "CaseSpec":
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ValueError("steps: step names must be unique")
        for dest, asset in self.workspace.items():
            if asset not in self.assets:
                raise ValueError(f"workspace.{dest}: names asset {asset!r}, which is not under assets")
        for step in self.steps:
            if step.for_each and step.for_each.split(".")[0] not in names[: names.index(step.name)]:
                raise ValueError(f"steps.{step.name}.for_each: {step.for_each!r} must name an earlier step")
        return self


def is_case_file(file_path: Path, cases_root: Path) -> bool:
    """A YAML file under the cases folder, not in a case's assets or solutions."""
    if file_path.suffix not in (".yaml", ".yml"):
        return False
    try:
        rel = file_path.resolve().relative_to(cases_root.resolve())
    except ValueError:
        return False
    return not ({"assets", "solutions"} & set(rel.parts[:-1]))


class Case:
    """A loaded, validated case with its resolved paths."""

    def __init__(self, path: Path, spec: CaseSpec, prompts_dir: Path, board=None):
        self.path = path
        self.spec = spec
        self.name = path.stem
        self.dir = path.parent
        self.prompts_dir = prompts_dir
        self.board = board  # hardware.Board or None

    @property
    def executor(self) -> str:
        """The executor this case runs on: its own ``executor:`` or its stage's default."""
        return self.spec.executor or STAGES[self.spec.stage].executor

    def step_executor(self, step: StepSpec) -> str:
        """The executor a step runs on: its own ``executor:`` or the case's."""
        return step.executor or self.executor

    def asset(self, name: str) -> Path:
        return (self.dir / self.spec.assets[name]).resolve()

    def solution_path(self, relative: str) -> Path:
        return (self.dir / relative).resolve()

    def step(self, name: str) -> StepSpec:
        return next(s for s in self.spec.steps if s.name == name)

    def file_hashes(self) -> dict[str, str]:
        """sha256 of the case file and every prompt template it uses, for provenance."""
        files = {str(self.path): self.path}
        for step in self.spec.steps:
            for template in (step.prompt, step.repair_prompt):
                files[template] = defaults.prompt_path(self.prompts_dir, template) or self.prompts_dir / template
        return {name: _sha256(p) for name, p in sorted(files.items())}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _field_path(loc: tuple[Any, ...], spec: dict[str, Any]) -> str:
    parts: list[str] = []
    steps = spec.get("steps") if isinstance(spec, dict) else None
    for i, part in enumerate(loc):
        # show steps[1] as steps.<name> when the step has one: easier to find in the file
        if i > 0 and loc[i - 1] == "steps" and isinstance(part, int) and isinstance(steps, list):
            step = steps[part] if part < len(steps) else None
            name = step.get("name") if isinstance(step, dict) else None
            parts[-1] = f"steps.{name}" if name else f"steps[{part}]"
            continue
        parts.append(str(part))
    return ".".join(parts) or "(top level)"


def load_case(path: Path, prompts_dir: Path, hardware_dir: Path | None = None, registries: Any = None) -> Case:
    """Load and validate a case file; raise CaseError naming every problem found, one line each
    (file, field, fix): unknown top-level fields and the schema's errors; once the schema holds,
    the board and what ``case_checks`` checks (files, template variables, packages and, given the
    session's ``registries``, every part the case names from them).
    A file that is not YAML, or a ``${context.*}`` that does not resolve, is one line on its own.
    ``hardware_dir`` defaults to ``hardware/`` beside the prompts folder."""
    raw = _read(path)
    unknown = _unknown_top_level(raw)
    known = resolve_references(path, {k: v for k, v in raw.items() if k in CaseSpec.model_fields})
    problems = [line for _key, line in unknown]
    try:
        spec = CaseSpec.model_validate(known)
    except ValidationError as exc:
        misspelt = {(guess,) for guess, _line in unknown if guess}  # their "field required" is the same mistake
        problems += [f"field {_field_path(e.loc, known)}: {e.hint}" for e in field_errors(exc, CaseSpec)
                     if not (e.kind == "missing" and e.loc in misspelt)]
        raise CaseError("\n".join(f"{path}: {line}" for line in problems)) from None
    hardware = Path(hardware_dir or Path(prompts_dir).parent / "hardware").resolve()
    try:
        board = _board(hardware, spec.board)
    except CaseError as exc:
        board = None
        problems.append(str(exc))
    case = Case(path, spec, prompts_dir, board)
    problems += case_checks.problems(case, registries)
    if problems:
        raise CaseError("\n".join(f"{path}: {line}" for line in problems))
    return case


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise CaseError(f"{path}: is not UTF-8 text; save it as UTF-8") from None
    except OSError as exc:
        raise CaseError(f"{path}: cannot be read ({exc.strerror}); check that it exists and is readable") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise CaseError(f"{path}:{where} is not valid YAML ({getattr(exc, 'problem', exc)}); fix the syntax") from None
    if not isinstance(raw, dict):
        raise CaseError(f"{path}: expected a mapping of case fields (stage, description, steps, ...), got {type(raw).__name__}")
    return raw


def _unknown_top_level(raw: dict[str, Any]) -> list[tuple[str | None, str]]:
    """(the field it probably misspells, the line) for each unknown top-level field: reported as
    itself, never as the required field it misses."""
    nested = {f"{section}.{name}": name for section in ("repair", "timeouts", "limits", "requires")
              for name in CaseSpec.model_fields[section].annotation.model_fields}
    found = []
    for key in raw:
        if key not in CaseSpec.model_fields:
            # a field of a section written at the top level (max_attempts: 3) is pointed to its section
            guess = next((path for path, name in nested.items() if name == key), None) or did_you_mean(
                key, [*CaseSpec.model_fields, *nested])
            fix = f"did you mean {guess!r}?" if guess else f"remove it or check its spelling (known: {', '.join(CaseSpec.model_fields)})"
            found.append((guess, f"field {key}: unknown field; {fix}"))
    return found


def resolve_references(path: Path, raw: dict[str, Any]) -> dict[str, Any]:
    """``${context.*}`` in each step's oracle params replaced by the context's values; a malformed
    context or step is left to the schema to report."""
    context, steps = raw.get("context", {}), raw.get("steps")
    if not isinstance(context, dict) or not isinstance(steps, list):
        return raw
    resolved = []
    for i, step in enumerate(steps):
        oracle = step.get("oracle") if isinstance(step, dict) else None
        params = oracle.get("params") if isinstance(oracle, dict) else None
        if isinstance(params, dict):
            try:
                params = context_refs.resolve(params, context)
            except context_refs.UnresolvedReference as exc:
                where = _field_path(("steps", i, "oracle", "params"), raw)
                raise CaseError(f"{path}: field {where}.{exc.where}: {exc}") from None
            step = {**step, "oracle": {**oracle, "params": params}}
        resolved.append(step)
    return {**raw, "steps": resolved}


def _board(hardware_dir: Path, name: str | None):
    """The case's board entry; CaseError ``field board: ...`` (no file name) when it does not load."""
    if name is None:
        return None
    from pytest_autopilot.cases.boards import HardwareError, load_board

    known = defaults.board_files(hardware_dir)
    if name not in known:
        guess = did_you_mean(name, known)
        raise CaseError(f"field board: no board {name!r} in {hardware_dir} or the packaged boards (known: "
                        f"{', '.join(sorted(known)) or 'none'}); add {name}.yaml to register it"
                        + (f", or did you mean {guess!r}?" if guess else ""))
    try:
        return load_board(hardware_dir, name)
    except HardwareError as exc:
        raise CaseError(f"field board: {exc}") from None
