"""Every collection check of a case, in one place: what ``load_case`` checks once a case file fits
the schema (every file, template variable and package it names) and, given the session's
registries (``loop.registries.Registries``), every part it names from them (executor,
toolchains, oracles and their params, legacy checks, repair strategies, ``caught_by``). They
run once per case file, when it is loaded. Each check yields its problems as
``field <field>: <what>; <fix>`` (the caller puts the file in front). Nothing here builds an
environment, probes a toolchain or runs code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping

from pytest_autopilot.cases import defaults, prompts
from pytest_autopilot.core.util import did_you_mean, field_errors

TEMPLATE_FIELDS = ("prompt", "repair_prompt", "feedback_prompt")


def problems(case, registries=None) -> list[str]:
    """Every problem of the case's files, templates, solutions and environment, and, with the
    session's ``registries``, of the parts it names from them."""
    checks = (_assets, _templates, _solutions, _environment)
    found = [problem for check in checks for problem in check(case)]
    if registries is not None:
        found += [problem for check in (_executor, _toolchains, _oracles, _legacy_checks, _strategies, _caught_by)
                  for problem in check(case, registries)]
    return found


def _assets(case) -> Iterator[str]:
    for name, rel in case.spec.assets.items():
        if not case.asset(name).exists():
            yield f"field assets.{name}: file {rel!r} not found (paths are relative to the case file)"


def loop_variables(case, step, field: str) -> dict[str, Any]:
    """What the repair loop (``loop.repair``) renders the step's ``field`` template with: the case's
    context and the harness's variables, with placeholders for what only a run knows (earlier
    answers, the plan's items, the error). tests/cases/test_collection_checks.py keeps the names
    equal to the loop's."""
    spec = case.spec
    earlier = spec.steps[:spec.steps.index(step)]
    variables = {
        **spec.context,
        "description": spec.description,
        "workspace": dict(spec.workspace),
        "steps": {s.name: {} if s.kind == "json" else "" for s in earlier if not s.for_each},
        "item": {} if step.for_each else None,
        "items": [{}] if step.for_each else None,  # one item: a loop over them is rendered once
        "inputs": sorted(spec.workspace),
        "language": step.language,
    }
    if field == "repair_prompt":
        variables.update(task="", attempt=1, previous_answer="", error="")
    elif field == "feedback_prompt":
        variables.update(attempt=1, error="")
    return variables


def _templates(case) -> Iterator[str]:
    for step in case.spec.steps:
        for field in TEMPLATE_FIELDS:
            template = getattr(step, field)
            where = f"field steps.{step.name}.{field}"
            if defaults.prompt_path(case.prompts_dir, template) is None:
                yield f"{where}: template {template!r} not found in {case.prompts_dir} or the packaged prompts"
                continue
            try:
                use = prompts.template_use(case.prompts_dir, template)
            except prompts.PromptError as exc:
                yield f"{where}: {exc}"
                continue
            variables = loop_variables(case, step, field)
            if set(use.variables) - set(variables):  # rare: only then render, to see which are reached
                missing = prompts.unsupplied(case.prompts_dir, template, variables)
                if missing:
                    yield f"{where}: {_unsupplied(template, missing, use.variables, set(variables))}"
            earlier = list(variables["steps"])  # steps.<name> is an earlier step's answer; per-item steps keep none
            for name, reader in sorted(use.steps.items()):
                if name not in earlier:
                    guess = did_you_mean(name, earlier)
                    yield (f"{where}: template {_via(template, reader)} reads steps.{name}, which is no earlier step's "
                           f"answer; " + (f"did you mean steps.{guess}?" if guess else
                                          f"earlier steps: {', '.join(earlier) or 'none'}"))


def _unsupplied(template: str, missing: list[str], readers: dict[str, str], supplied: set[str]) -> str:
    names = ", ".join(f"{{{{ {var} }}}}" + (f" (did you mean {guess!r}?)" if (guess := did_you_mean(var, supplied)) else "")
                      for var in missing)
    via = {readers.get(var, template) for var in missing} - {template}
    return (f"template {template}{' (via ' + ', '.join(sorted(via)) + ')' if via else ''} uses {names}, which the "
            f"case's context does not give; add {'it' if len(missing) == 1 else 'them'} to context or fix the template")


def _via(template: str, reader: str) -> str:
    return template if reader == template else f"{template} (via {reader})"


def _solutions(case) -> Iterator[str]:
    spec = case.spec
    step_names = [s.name for s in spec.steps]
    referenced = list(spec.solutions.reference.items()) + [
        (key, other.file) for key, others in (*spec.solutions.also_good.items(), *spec.solutions.bad.items())
        for other in others
    ]
    for key, rel in referenced:
        step = key.split("/")[0]
        if step not in step_names:
            guess = did_you_mean(step, step_names)
            yield (f"field solutions: key {key!r} names no step; " + (f"did you mean {guess!r}?" if guess else
                                                                     f"steps: {', '.join(sorted(step_names))}"))
        if not case.solution_path(rel).is_file():
            yield f"field solutions.{key}: file {rel!r} not found (relative to the case file)"
    known = sorted({Path(rel).stem for _, rel in referenced} | {"reference"})
    for i, script in enumerate(spec.standin):
        for key, names in script.items():
            for name in names:
                if name not in known:
                    guess = did_you_mean(name, known)
                    yield (f"field standin[{i}].{key}: {name!r} is not a solution file stem; "
                           + (f"did you mean {guess!r}?" if guess else f"known: {', '.join(known)}"))


def _environment(case) -> Iterator[str]:
    """Pip requirement specifiers of the case's ``environment:`` and of its board's ``software:``
    (the venv is built on first use, so a typo there would only show then)."""
    if case.spec.environment is not None:
        yield from _packages(case.spec.environment.packages, "field environment.packages", "")
    board = case.board
    if board is not None and board.software is not None:
        yield from _packages(board.software.packages, "field board",
                             f"hardware/{board.name}.yaml software.packages: ")


def _packages(packages: list[str], where: str, whose: str) -> Iterator[str]:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    seen: dict[str, str] = {}
    for i, text in enumerate(packages):
        at = f"{where}.{i}" if not whose else where
        try:
            requirement = Requirement(text)
        except InvalidRequirement as exc:
            reason = str(exc).splitlines()[0]
            yield f"{at}: {whose}{text!r} is not a pip requirement ({reason}); write e.g. 'numpy==1.26.4'"
            continue
        name = canonicalize_name(requirement.name)
        if name in seen:
            yield f"{at}: {whose}lists {requirement.name} twice ({seen[name]!r} and {text!r}); keep one"
        seen[name] = text


# ---------------------------------------------------------------------------------------------
# what the case names from the session's registries (core.registry: the built-in parts plus a conftest's)

# only the python executor builds and runs a declared environment; the other built-in ones would ignore it
ENVIRONMENT_EXECUTORS = ("python",)


def _executor(case, registries) -> Iterator[str]:
    if case.executor not in registries.executors:
        yield f"field executor: {registries.executors.unknown(case.executor)}"
    elif (case.spec.environment is not None and case.executor not in ENVIRONMENT_EXECUTORS
          and registries.executors.is_builtin(case.executor)):
        yield (f"field environment: executor {case.executor!r} does not run programs in a declared "
               "environment (only 'python' does); remove environment or use executor: python")
    for step in case.spec.steps:
        if step.executor and step.executor not in registries.executors:
            yield f"field steps.{step.name}.executor: {registries.executors.unknown(step.executor)}"


def _toolchains(case, registries) -> Iterator[str]:
    for i, name in enumerate(case.spec.requires.toolchains):
        if name not in registries.toolchains:
            yield f"field requires.toolchains.{i}: {registries.toolchains.unknown(name)}"


def _oracles(case, registries) -> Iterator[str]:
    names = {"assets": list(case.spec.assets), "workspace": list(case.spec.workspace)}
    for step in case.spec.steps:
        for field, hint in oracle_problems(registries, step.oracle.name, step.oracle.params, names):
            yield f"field steps.{step.name}.oracle.{field}: {hint}"


def oracle_problems(registries, name: str, params: Mapping[str, Any],
                    case: Mapping[str, Any] | None = None) -> list[tuple[str, str]]:
    """Each (field under ``oracle``, what is wrong and the fix) when a case names an unknown oracle
    or params its model rejects. ``case`` ({"assets": [...], "workspace": [...]}) lets the model
    check params that name the case's files."""
    if name not in registries.oracles:
        return [("name", registries.oracles.unknown(name))]
    model = registries.oracle_params.get(name) if name in registries.oracle_params else None
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


def _legacy_checks(case, registries) -> Iterator[str]:
    for step in case.spec.steps:
        if step.legacy is not None and step.legacy not in registries.legacy_checks:
            yield f"field steps.{step.name}.legacy: {registries.legacy_checks.unknown(step.legacy)}"


def _strategies(case, registries) -> Iterator[str]:
    for i, name in enumerate(case.spec.repair.strategy or []):
        if name not in registries.strategies:
            yield f"field repair.strategy.{i}: {registries.strategies.unknown(name)}"


def _caught_by(case, registries) -> Iterator[str]:
    """A known-bad solution's ``caught_by`` is a check name, ``check`` or ``oracle.check``, whose
    oracle is the step's."""
    spec = case.spec
    oracles = {s.name: s.oracle.name for s in spec.steps}
    for key, bads in spec.solutions.bad.items():
        step_oracle = oracles.get(key.split("/")[0])
        for i, bad in enumerate(bads):
            value, where = bad.caught_by, f"field solutions.bad.{key}[{i}].caught_by"
            if value is None:
                continue
            if not value.strip() or value != value.strip() or " " in value:
                yield f"{where}: {value!r} is not a check name; write `check` or `oracle.check`"
                continue
            named, _, check = value.partition(".")
            if check and step_oracle and named != step_oracle and named in registries.oracles:
                yield (f"{where}: {value!r} names oracle {named}, but step {key.split('/')[0]} is "
                       f"judged by {step_oracle}; write {step_oracle}.{check} or just {check}")
