"""Strict oracle for tabular (DP) tasks of any shape: ``dp_reference``, differential against the
case's reference solution.

The reference and the candidate run on the same inputs in the sandbox (``ctx.run``, the
case's own executor) and their output tables are compared as the case declares them
(``oracles.dp_reference_params``): files, row pairing, per-column types and tolerances,
column order, row counts, split invariants and fitted statistics. Then the candidate runs a
second time on the same inputs (identical files: a fixed seed), and both run on inputs
generated from the case's column schema (``oracles._tabular_schema``), which is what catches
code that only works on the one file. Check details describe the failed property and never
quote the reference's output (``oracles._tabular_compare``).

The reference is a file of the case: OracleContext does not carry the case's solutions, so
the ``reference`` param names it, relative to the case file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from pydantic import ValidationError

from pytest_autopilot.core.errors import HarnessError
from pytest_autopilot.core.records import Category, Check, Verdict
from pytest_autopilot.core.util import validation_line
from pytest_autopilot.oracles import OracleContext, categorised_verdict, exit_check, stderr_tail
from pytest_autopilot.oracles._tabular_compare import (
    Frames,
    compare_outputs,
    declaration_problems,
    read_files,
    read_outputs,
)
from pytest_autopilot.oracles._tabular_schema import build_table, describe, shapes, to_csv
from pytest_autopilot.oracles.dp_reference_params import DpReferenceParams

_ARTIFACT = {"outputs_exist", "outputs_parse"}
_SHOWN_INPUT_LINES = 20
_CACHE_SIZE = 64


@dataclass(frozen=True)
class _ReferenceRun:
    returncode: int
    stderr: str
    frames: Frames  # empty when it failed


def _reference_runs(ctx: OracleContext) -> dict[str, _ReferenceRun]:
    """The reference is deterministic: its outputs per (code, inputs) are reused across the attempts
    and variants judged in this session (the self-test judges one case's variants back to back)."""
    if ctx.shared is None:  # an oracle called on its own: nothing to share
        return {}
    return ctx.shared.get("dp_reference.reference_runs", dict, close=lambda memo: memo.clear())


def dp_reference(ctx: OracleContext) -> Verdict:
    """Compare the candidate's output files with the reference's, on the case's inputs and on
    generated ones; see ``DpReferenceParams`` for what a case declares."""
    p = parse_params(ctx.params)
    if ctx.run is None or not isinstance(ctx.answer, str):
        raise HarnessError(Category.HARNESS_ERROR, "dp_reference: needs ctx.run and the code as ctx.answer (a harness bug)")
    reference = _reference_code(ctx, p)
    inputs = _inputs(ctx)
    checks: list[Check] = []
    ran = exit_check(ctx.execution)
    if ran:
        checks.append(ran)
        if not ran.passed:  # outputs of a failed run are not worth comparing
            return categorised_verdict("dp_reference", checks, _ARTIFACT, ctx.execution)
    want = _run_reference(ctx, reference, inputs, p, "the case's own inputs")
    if want.returncode != 0:
        raise HarnessError(Category.HARNESS_ERROR, f"dp_reference: the case's reference {p.reference} fails on the "
                                                   f"case's own inputs: exit code {want.returncode}; {stderr_tail(want.stderr)}")
    got, read = read_outputs(read_files(ctx.workdir, _paths(p)))
    checks.extend(read)
    if all(c.passed for c in read):
        checks.extend(compare_outputs(got, want.frames, p))
    if p.check_determinism and all(c.passed for c in checks):
        checks.append(_determinism_check(ctx, inputs, p))
    if p.generated and p.generated.examples and all(c.passed for c in checks):
        checks.append(_generated_check(ctx, reference, inputs, p))
    return categorised_verdict("dp_reference", checks, _ARTIFACT, ctx.execution)


def parse_params(params: Mapping) -> DpReferenceParams:
    try:
        return DpReferenceParams.model_validate(dict(params or {}))
    except ValidationError as exc:
        raise HarnessError(Category.HARNESS_ERROR, validation_line(exc, "oracle dp_reference params")) from None


def _paths(p: DpReferenceParams) -> list[str]:
    return [f.path for f in p.files]


def _reference_code(ctx: OracleContext, p: DpReferenceParams) -> str:
    path = (Path(ctx.case_dir) / p.reference).resolve()
    if not path.is_file():
        raise HarnessError(Category.HARNESS_ERROR, f"dp_reference: reference {p.reference!r} not found "
                                                   f"(relative to the case file's folder {ctx.case_dir})")
    return path.read_text()


def _inputs(ctx: OracleContext) -> dict[str, Path | bytes]:
    """What the candidate's run started with: the laid-out inputs, else the case's workspace."""
    return dict(ctx.inputs) or {dest: ctx.assets[name] for dest, name in ctx.workspace.items()}


def _digest(code: str, files: Mapping[str, Path | bytes]) -> str:
    h = hashlib.sha256(code.encode())
    for rel in sorted(files):
        source = files[rel]
        h.update(rel.encode() + b"\0")
        if isinstance(source, bytes):
            h.update(source)
        elif Path(source).is_dir():
            for item in sorted(Path(source).rglob("*")):
                if item.is_file():
                    h.update(str(item.relative_to(source)).encode() + b"\0" + item.read_bytes())
        else:
            h.update(Path(source).read_bytes())
    return h.hexdigest()


def _run_reference(ctx: OracleContext, code: str, files: Mapping[str, Path | bytes], p: DpReferenceParams,
                   where: str) -> _ReferenceRun:
    """The reference's run on ``files`` (``where``: which inputs, for a harness error)."""
    key, memo = _digest(code, files) + "|" + "|".join(_paths(p)), _reference_runs(ctx)
    if key in memo:
        return memo[key]
    with ctx.run(code, dict(files), "dp-reference-") as (result, workdir):
        data = read_files(workdir, _paths(p)) if result.returncode == 0 and not result.timed_out else {}
    if result.timed_out or result.limit_hit:
        raise HarnessError(Category.HARNESS_ERROR, f"dp_reference: the case's reference {p.reference} was killed on "
                                                   f"{where} ({'time limit' if result.timed_out else result.limit_hit})")
    frames: Frames = {}
    if result.returncode == 0:
        frames, read = read_outputs(data)
        bad = [c.detail for c in read if not c.passed] or declaration_problems(frames, p)
        if bad:
            raise HarnessError(Category.HARNESS_ERROR, f"dp_reference: the case's reference {p.reference} on {where}: "
                                                       f"{bad[0]}")
    run = _ReferenceRun(result.returncode, result.stderr or "", frames)
    if len(memo) >= _CACHE_SIZE:
        memo.pop(next(iter(memo)))
    memo[key] = run
    return run


def _determinism_check(ctx: OracleContext, inputs: Mapping[str, Path | bytes], p: DpReferenceParams) -> Check:
    first = read_files(ctx.workdir, _paths(p))
    with ctx.run(ctx.answer, dict(inputs), "dp-rerun-") as (result, workdir):
        if result.returncode != 0 or result.timed_out:
            return Check("deterministic", False, f"a second run on the same inputs failed: exit code {result.returncode}; "
                                                 f"{stderr_tail(result.stderr)}")
        again = read_files(workdir, _paths(p))
    differ = [path for path in first if again[path] != first[path]]
    return Check("deterministic", not differ, f"a second run on the same inputs wrote different {', '.join(differ)}: "
                                              "use a fixed random seed" if differ else "")


# ---- re-runs on generated inputs


def _generated_check(ctx: OracleContext, reference: str, inputs: Mapping[str, Path | bytes],
                     p: DpReferenceParams) -> Check:
    """Both programs on tables generated from the declared schema: the candidate must behave as
    the reference does on every one (the first failure ends the search: no shrinking)."""
    g = p.generated
    if g.path not in inputs:
        raise HarnessError(Category.HARNESS_ERROR, f"dp_reference: generated.path {g.path!r} is not an input of the case "
                                                   f"(inputs: {', '.join(sorted(inputs)) or 'none'})")
    failure = None
    for shape in shapes(g):
        data = to_csv(build_table(g, shape))
        problem = _generated_problem(ctx, reference, {**inputs, g.path: data}, p)
        if problem:
            failure = (shape, data, problem)
            break
    if failure is None:
        return Check("generated_inputs", True, f"{g.examples} generated inputs of the same schema passed")
    shape, data, problem = failure
    lines = data.decode().splitlines()
    shown = "\n".join(lines[:_SHOWN_INPUT_LINES])
    if len(lines) > _SHOWN_INPUT_LINES:
        shown += f"\n... ({len(lines) - _SHOWN_INPUT_LINES} more lines)"
    return Check("generated_inputs", False,
                 f"the same program fails on another input of the same schema ({describe(g, shape)}): {problem}\n"
                 f"That {g.path} began:\n{shown}")


def _generated_problem(ctx: OracleContext, reference: str, files: dict[str, Path | bytes],
                       p: DpReferenceParams) -> str | None:
    want = _run_reference(ctx, reference, files, p, f"a generated {p.generated.path}")
    with ctx.run(ctx.answer, files, "dp-generated-") as (result, workdir):
        if result.timed_out or result.limit_hit:
            return "the program was killed (" + ("time limit" if result.timed_out else f"{result.limit_hit} limit") + ")"
        if want.returncode != 0:
            return None if result.returncode != 0 else (
                "exit code 0, but the task has no valid output for this input: the program must exit non-zero")
        if result.returncode != 0:
            return f"exit code {result.returncode}; {stderr_tail(result.stderr)}"
        got, checks = read_outputs(read_files(workdir, _paths(p)))
    if all(c.passed for c in checks):
        checks.extend(compare_outputs(got, want.frames, p))
    return "; ".join(f"check {c.name}: {c.detail}" for c in checks if not c.passed) or None
