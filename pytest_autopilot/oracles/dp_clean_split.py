"""Strict oracle of the DP stage's fully specified task: ``dp_clean_split`` (clean + scale +
stratified split, see prompts/dp/clean_split.j2).

It checks the outputs against what it computes itself from the input (``oracles.dp_split``),
then re-runs the same code through the case's executor (``ctx.run``): once on the same
input (the outputs must be identical: a fixed seed) and on datasets of the same schema
generated from a fixed numpy seed (property re-runs), which is what catches code that only
works on the one file.

One named ``Check`` per property. Category: ``artifact_missing`` when an expected file is
absent or unparseable, ``runtime_error`` / ``timeout`` / ``resource_limit`` when the program
did not finish cleanly, else ``semantic_mismatch``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_autopilot.core.errors import HarnessError
from pytest_autopilot.core.records import Category, Check, Verdict
from pytest_autopilot.oracles import OracleContext, categorised_verdict, exit_check, stderr_tail
from pytest_autopilot.oracles.dp_split import check_split_outputs, clean_params, describe, expected_clean

_ARTIFACT = {"outputs_exist", "outputs_parse"}


def dp_clean_split(ctx: OracleContext) -> Verdict:
    """Clean, scale with the training split's min/max, stratified 80/20 split (see prompts/dp/clean_split.j2).

    params (defaults): input data/fruit.csv; train out/train.csv; test out/test.csv; label Fruit;
    channels [Red, Green, Blue]; valid_range [0, 255]; test_fraction 0.2; min_class_rows 2;
    class_slack_rows 1 (per-class test count within this many rows of test_fraction * n);
    ratio_tolerance 0.02; scale_tolerance 1e-6; property_examples 8 (re-runs on other
    datasets, 0 to skip); check_determinism true (a second run must write identical files).
    """
    p = clean_params(ctx.params)
    if p["input"] not in ctx.workspace:
        raise HarnessError(Category.HARNESS_ERROR, f"dp_clean_split: {p['input']!r} is not a workspace path of the case")
    input_path = ctx.assets[ctx.workspace[p["input"]]]
    clean, _info = expected_clean(input_path, p)
    checks: list[Check] = []
    ran = exit_check(ctx.execution)
    if ran:
        checks.append(ran)
    checks.extend(check_split_outputs(ctx.workdir, clean, p))
    if not all(c.passed for c in checks):
        return categorised_verdict("dp_clean_split", checks, _ARTIFACT, ctx.execution)
    if ctx.run is None or not isinstance(ctx.answer, str):
        raise HarnessError(Category.HARNESS_ERROR, "dp_clean_split: re-runs need ctx.run and the code as ctx.answer (a harness bug)")
    if p["check_determinism"]:
        checks.append(_determinism_check(ctx, input_path, p))
    if int(p["property_examples"]) > 0 and all(c.passed for c in checks):
        checks.append(_property_check(ctx, ctx.answer, p))
    return categorised_verdict("dp_clean_split", checks, _ARTIFACT, ctx.execution)


def _determinism_check(ctx: OracleContext, input_path: Path, p: dict[str, Any]) -> Check:
    first = {k: (ctx.workdir / p[k]).read_bytes() for k in ("train", "test")}
    with ctx.run(ctx.answer, {p["input"]: Path(input_path)}, "dp-rerun-") as (result, workdir):
        if result.returncode != 0 or result.timed_out:
            return Check("deterministic", False, f"a second run on the same input failed: exit code {result.returncode}; "
                         f"{stderr_tail(result.stderr)}")
        differ = [p[k] for k in ("train", "test")
                  if not (workdir / p[k]).is_file() or (workdir / p[k]).read_bytes() != first[k]]
        return Check("deterministic", not differ,
                     f"a second run on the same input wrote different {', '.join(differ)}: use a fixed random seed" if differ else "")


# ---- property re-runs


def _to_csv(rows: list[list], p: dict[str, Any]) -> str:
    lines = [",".join([p["label"], *p["channels"]])]
    for row in rows:
        cells = []
        for v in row:
            if v is None:
                cells.append("")
            elif isinstance(v, str):
                cells.append(f'"{v}"' if ("," in v or '"' in v) else v)
            else:
                cells.append(repr(v) if isinstance(v, float) else str(v))
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


# Explicit examples run first, every time: they cover the cases the spec names.
_EXPLICIT = [
    ("single class", [["kiwi", 90 + 7 * i, 140 - 5 * i, 40 + 3 * i] for i in range(7)] + [["kiwi", 97, 135, 43]]),
    ("tiny, a class with one row, missing and out-of-range values",
     [["lime", 120, 200, 60], ["lime", 125, 190, 70], ["plum", 90, 40, 120], ["plum", 95, 45, 110],
      ["plum", 100, None, 115], ["plum", 80, 35, 256], ["fig", 140, 90, 80]]),
    ("other class names, float readings, boundary values",
     [["Green Apple", 0.0, 180.5, 40.25], ["Green Apple", 30.5, 170.0, 45.0], ["Green Apple", 25.75, 175.5, 50.5],
      ["Green Apple", 28.0, 160.25, 255.0], ["Green Apple", -0.5, 165.0, 42.0],
      ["blood orange", 200.5, 80.0, 30.0], ["blood orange", 210.0, 85.25, 35.5], ["blood orange", 190.25, 75.0, 0.0],
      ["blood orange", 205.0, 90.5, 38.0], ["blood orange", 205.0, 90.5, 38.0]]),
    ("no usable data", [["apple", 150, 60, 45], ["pear", 130, None, 50], ["pear", 300, 150, 60], [None, 140, 70, 40]]),
]

_GENERATOR_SEED = 0  # fixed: every judge of the same code sees the same datasets
_CLASS_POOLS = [["apple", "banana", "orange"], ["kiwi", "mango"], ["lime"], ["red pear", "Quince", "fig", "date"]]
_OUT_OF_RANGE = [-1, -20, 256, 300, 1023]


def _generated_datasets(count: int) -> list[list[list]]:
    """``count`` datasets of the clean_split schema: known or new class names, 0-12 rows per
    class of integer or 2-decimal readings, then up to 3 duplicates, 3 missing values (the label
    too) and 2 out-of-range readings, shuffled."""
    import numpy as np

    from pytest_autopilot.oracles._tabular_schema import new_names

    rng = np.random.default_rng(_GENERATOR_SEED)
    datasets = []
    for _ in range(count):
        if rng.integers(2):
            classes = _CLASS_POOLS[int(rng.integers(len(_CLASS_POOLS)))]
        else:
            classes = new_names(rng, int(rng.integers(1, 5)), max_size=8)
        as_floats = bool(rng.integers(2))

        def reading():
            return int(rng.integers(0, 25501)) / 100 if as_floats else int(rng.integers(0, 256))

        rows = [[cls, reading(), reading(), reading()] for cls in classes for _ in range(int(rng.integers(0, 13)))]
        if rows:
            for _ in range(int(rng.integers(0, 4))):  # exact duplicates
                rows.append(list(rows[int(rng.integers(len(rows)))]))
            for _ in range(int(rng.integers(0, 4))):  # missing values (the label too)
                rows[int(rng.integers(len(rows)))][int(rng.integers(0, 4))] = None
            for _ in range(int(rng.integers(0, 3))):  # out-of-range readings
                rows[int(rng.integers(len(rows)))][int(rng.integers(1, 4))] = _OUT_OF_RANGE[int(rng.integers(5))]
            rows = [rows[i] for i in rng.permutation(len(rows))]
        datasets.append(rows)
    return datasets


def _example_problem(ctx: OracleContext, code: str, csv_text: str, p: dict[str, Any]) -> str | None:
    """Run the code on one generated dataset (``ctx.run``: the case's executor, a fresh work
    dir); None if it behaves as the spec says."""
    clean, _info = expected_clean(csv_text.encode(), p)
    with ctx.run(code, {p["input"]: csv_text.encode()}, "dp-rerun-") as (result, workdir):
        if result.timed_out or result.limit_hit:
            return "the program was killed (" + ("time limit" if result.timed_out else f"{result.limit_hit} limit") + ")"
        if not len(clean):
            if result.returncode == 0:
                return "exit code 0, but no class has enough usable rows: the spec asks for a non-zero exit"
            return None
        if result.returncode != 0:
            return f"exit code {result.returncode}; {stderr_tail(result.stderr)}"
        failed = [c for c in check_split_outputs(workdir, clean, p) if not c.passed]
        return "; ".join(f"check {c.name}: {c.detail}" for c in failed) or None


def _property_check(ctx: OracleContext, code: str, p: dict[str, Any]) -> Check:
    """The explicit examples first, then generated datasets; one failure is enough (no shrinking)."""
    total = int(p["property_examples"])
    explicit = _EXPLICIT[:total]
    cases = [*explicit, *(("generated", rows) for rows in _generated_datasets(max(1, total - len(explicit))))]
    failure = None
    for note, rows in cases:
        csv_text = _to_csv(rows, p)
        problem = _example_problem(ctx, code, csv_text, p)
        if problem:
            failure = (note, csv_text, problem)
            break
    if failure is None:
        return Check("property_reruns", True, f"{len(cases)} datasets of the same schema passed")
    note, csv_text, problem = failure
    _clean, info = expected_clean(csv_text.encode(), p)
    lines = csv_text.splitlines()
    shown = "\n".join(lines[:25]) + (f"\n... ({len(lines) - 25} more lines)" if len(lines) > 25 else "")
    return Check("property_reruns", False,
                 f"the same program fails on another dataset of the same schema ({note}: {describe(info)}): {problem}\n"
                 f"That {p['input']} was:\n{shown}")
