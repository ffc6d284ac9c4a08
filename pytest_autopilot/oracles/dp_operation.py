"""Strict oracle of the DP stage's operation steps: ``dp_operation`` judges one chained pandas
operation of the plan (``oracles.dp_plan``) by the CSV files its JSON manifest names,
against the files the operation read (the previous operation's outputs, or the raw data).

One named ``Check`` per property. Category: ``artifact_missing`` when the manifest or an
output it names is absent or unparseable, ``runtime_error`` / ``timeout`` /
``resource_limit`` when the program did not finish cleanly, else ``semantic_mismatch``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pytest_autopilot.core.errors import HarnessError
from pytest_autopilot.core.records import Category, Check, Verdict
from pytest_autopilot.core.util import listed
from pytest_autopilot.oracles import OracleContext, categorised_verdict, exit_check
from pytest_autopilot.oracles.dp_operation_kinds import drop_checks, encode_checks, scale_checks
from pytest_autopilot.oracles.tabular import numeric_columns, read_csv, row_keys

_ARTIFACT = {"manifest_present", "manifest_paths", "outputs_exist", "outputs_parse"}
DROP_KEYWORDS = ["drop", "remove", "dedup", "filter"]
ENCODE_KEYWORDS = ["encode", "encoding"]
SCALE_KEYWORDS = ["scale", "scaling", "normali", "standardi"]


def _manifest_paths(manifest: Any) -> list | None:
    if isinstance(manifest, dict):
        manifest = manifest.get("outputs")
    if isinstance(manifest, list):
        return manifest
    return None


def _operation_inputs(ctx: OracleContext) -> dict[str, Path | bytes]:
    """The data files the operation read: ``ctx.inputs``, what the loop laid out before the
    run (pristine, whatever the program did to its copies). When the previous item's outputs
    are among them, those are the operation's input and the workspace files are not (chained
    steps lay out the raw data too); else the workspace files are (the first operation)."""
    files = dict(ctx.inputs)
    previous = {rel: src for rel, src in files.items() if rel not in ctx.workspace}
    chosen = previous or files
    return {rel: src for rel, src in sorted(chosen.items()) if str(rel).lower().endswith(".csv")}


def _matches(name: str, keywords) -> bool:
    name = name.lower()
    return any(k.lower() in name for k in keywords)


def dp_operation(ctx: OracleContext) -> Verdict:
    """One pandas operation of the plan: the files its manifest names.

    params: ``label`` (default ``Fruit``); ``output_dir`` (outputs must lie under it, default
    ``out``); ``nan_policy``: ``no_new`` (default: an output may hold no more missing values in
    a column than the input had; a new column no more than the input's incomplete rows),
    ``none`` (no missing value at all) or ``any``; name rules, each a keyword list matched
    against the operation's name: ``split_keywords`` (default [split]: exactly one train and
    one test file partitioning the input rows, no leakage), ``missing_keywords`` (no missing
    value left), ``duplicate_keywords`` (no duplicate row left), ``drop_keywords``,
    ``encode_keywords`` and ``scale_keywords`` (the kind's defining property:
    ``oracles.dp_operation_kinds``); ``train_pattern`` /
    ``test_pattern`` (file-name substrings, default train / test; when a name holds both, the
    later one decides: ``split_train_test_test.csv`` is the test file).

    The operation's input: see ``_operation_inputs``.
    """
    p = ctx.params
    label = p.get("label", "Fruit")
    op_name = str((ctx.item or {}).get("name", ""))
    checks: list[Check] = []
    ran = exit_check(ctx.execution)
    if ran:
        checks.append(ran)
    frames = _written_frames(ctx, p.get("output_dir", "out"), checks)
    if frames is None:
        return categorised_verdict("dp_operation", checks, _ARTIFACT, ctx.execution)
    inputs = _read_inputs(ctx)
    in_frame = pd.concat(list(inputs.values()), ignore_index=True)
    checks += _content_checks(frames, in_frame, label, p.get("nan_policy", "no_new"))
    checks += _kind_checks(op_name, frames, inputs, in_frame, label, p)
    return categorised_verdict("dp_operation", checks, _ARTIFACT, ctx.execution)


def _written_frames(ctx: OracleContext, out_dir: str, checks: list[Check]) -> dict[str, pd.DataFrame] | None:
    """The CSV files the manifest names, read; None (with the failed checks appended) when the
    manifest is missing or names a file outside ``out_dir``, not written or not parseable."""
    paths = _manifest_paths(ctx.manifest)
    ok = bool(paths) and all(isinstance(x, str) for x in paths)
    checks.append(Check("manifest_present", ok, "" if ok else
                        'the answer needs a ```json block {"outputs": ["out/<file>.csv", ...]} naming at least one CSV file it wrote'
                        + ("" if ctx.manifest is None else f"; got {json.dumps(ctx.manifest)[:200]}")))
    if not ok:
        return None
    root = ctx.workdir.resolve()
    bad_paths = []
    for rel in paths:
        rp = Path(rel)
        inside = not rp.is_absolute() and ".." not in rp.parts and (root / rp).resolve().is_relative_to(root)
        under = not out_dir or (rp.parts[:1] == (out_dir,))
        if not (inside and under and rel.lower().endswith(".csv")):
            bad_paths.append(rel)
    checks.append(Check("manifest_paths", not bad_paths,
                        f"manifest paths must be relative .csv paths under {out_dir}/: {listed(bad_paths)}" if bad_paths else ""))
    missing = [rel for rel in paths if rel not in bad_paths and not (root / rel).is_file()]
    checks.append(Check("outputs_exist", not missing, f"listed but not written: {listed(missing)}" if missing else ""))
    frames: dict[str, pd.DataFrame] = {}
    unreadable = []
    for rel in paths:
        if rel in bad_paths or rel in missing:
            continue
        try:
            frames[rel] = read_csv(root / rel)
        except Exception as exc:  # noqa: BLE001 -- any parse failure is the answer's
            unreadable.append(f"{rel} ({type(exc).__name__}: {str(exc)[:120]})")
    checks.append(Check("outputs_parse", not unreadable, f"not parseable as CSV: {listed(unreadable)}" if unreadable else ""))
    return None if bad_paths or missing or unreadable else frames


def _read_inputs(ctx: OracleContext) -> dict[str, pd.DataFrame]:
    """The operation's input tables (``_operation_inputs``); unreadable or none is the harness's problem."""
    try:
        inputs: dict[str, pd.DataFrame] = {rel: read_csv(src) for rel, src in _operation_inputs(ctx).items()}
    except Exception as exc:  # noqa: BLE001
        raise HarnessError(Category.HARNESS_ERROR, f"dp_operation: cannot read the operation's inputs: {exc}") from exc
    if not inputs:
        raise HarnessError(Category.HARNESS_ERROR, "dp_operation: the operation has no CSV input (ctx.inputs holds none; check the case's workspace)")
    return inputs


def _content_checks(frames: dict[str, pd.DataFrame], in_frame: pd.DataFrame, label: str, policy: str) -> list[Check]:
    """What every operation's outputs must keep: the label and its classes, rows, no new missing or
    infinite values."""
    checks = []
    in_rows = len(in_frame)
    no_label = [rel for rel, f in frames.items() if label not in f.columns]
    checks.append(Check("label_column", not no_label,
                        f"the label column {label!r} is missing from: {listed(no_label)} (keep it, with its original values)" if no_label else ""))
    in_classes = set(in_frame[label].dropna().astype(str)) if label in in_frame.columns else set()
    wrong_classes = []
    for rel, f in frames.items():
        if label in f.columns:
            got = set(f[label].dropna().astype(str))
            if got != in_classes:
                wrong_classes.append(f"{rel}: lost {sorted(in_classes - got)}, new {sorted(got - in_classes)}")
    checks.append(Check("classes_kept", not wrong_classes,
                        f"{label} must keep exactly the input's classes {sorted(in_classes)}: {'; '.join(wrong_classes)}" if wrong_classes else ""))

    empty = [rel for rel, f in frames.items() if len(f) == 0]
    checks.append(Check("not_empty", not empty, f"no data rows in: {listed(empty)}" if empty else ""))
    exploded = [f"{rel} ({len(f)} rows)" for rel, f in frames.items() if len(f) > in_rows]
    checks.append(Check("no_row_explosion", not exploded,
                        f"more rows than the input's {in_rows}: {listed(exploded)}" if exploded else ""))

    if policy != "any":
        in_nan = in_frame.isna().sum()
        incomplete = int(in_frame.isna().any(axis=1).sum())
        problems = []
        for rel, f in frames.items():
            for col, count in f.isna().sum().items():
                allowed = 0 if policy == "none" else int(in_nan.get(col, incomplete))
                if count > allowed:
                    problems.append(f"{rel}:{col} has {int(count)} missing (allowed {allowed})")
        what = "no missing values allowed" if policy == "none" else "the operation introduced missing values"
        checks.append(Check("no_new_nan", not problems, f"{what}: {listed(problems)}" if problems else ""))

    infinite = []
    for rel, f in frames.items():
        for col in numeric_columns(f):
            n = int(np.isinf(f[col].to_numpy(dtype=float)).sum())
            if n:
                infinite.append(f"{rel}:{col} ({n} infinite)")
    checks.append(Check("finite_values", not infinite, f"numeric columns must be finite: {listed(infinite)}" if infinite else ""))
    return checks


def _kind_checks(op_name: str, frames: dict[str, pd.DataFrame], inputs: dict[str, pd.DataFrame],
                 in_frame: pd.DataFrame, label: str, p: dict) -> list[Check]:
    """The defining property of each kind the operation's name says it is (missing values,
    duplicates, a split, a drop, an encoding, a scaling)."""
    checks = []
    if _matches(op_name, p.get("missing_keywords", ["missing", "impute", "nan", "null"])):
        left = [f"{rel} ({int(f.isna().sum().sum())} missing)" for rel, f in frames.items() if f.isna().any().any()]
        checks.append(Check("missing_handled", not left,
                            f"operation {op_name!r} must leave no missing value: {listed(left)}" if left else ""))
    if _matches(op_name, p.get("duplicate_keywords", ["duplicate", "dedup"])):
        dup = [f"{rel} ({int(f.duplicated().sum())} duplicate rows)" for rel, f in frames.items() if f.duplicated().any()]
        checks.append(Check("duplicates_removed", not dup,
                            f"operation {op_name!r} must leave no duplicate row: {listed(dup)}" if dup else ""))
    train_pat, test_pat = p.get("train_pattern", "train"), p.get("test_pattern", "test")
    role = _role_of(train_pat, test_pat)
    if _matches(op_name, p.get("split_keywords", ["split"])):
        checks.extend(_split_checks(frames, in_frame, label, role, train_pat, test_pat))
    if _matches(op_name, p.get("drop_keywords", DROP_KEYWORDS)):
        checks.extend(drop_checks(frames, in_frame, op_name))
    if _matches(op_name, p.get("encode_keywords", ENCODE_KEYWORDS)):
        checks.extend(encode_checks(frames, in_frame, label, op_name))
    if _matches(op_name, p.get("scale_keywords", SCALE_KEYWORDS)):
        checks.extend(scale_checks(frames, inputs, role, op_name))
    return checks


def _role_of(train_pat: str, test_pat: str):
    def role(rel: str) -> str | None:  # the later of the two words in the file name decides
        stem = Path(rel).stem.lower()
        at_train, at_test = stem.rfind(train_pat), stem.rfind(test_pat)
        if at_train < 0 and at_test < 0:
            return None
        return "train" if at_train > at_test else "test"

    return role


def _split_checks(frames: dict[str, pd.DataFrame], in_frame: pd.DataFrame, label: str, role,
                  train_pat: str, test_pat: str) -> list[Check]:
    trains = [rel for rel in frames if role(rel) == "train"]
    tests = [rel for rel in frames if role(rel) == "test"]
    ok = len(trains) == 1 and len(tests) == 1
    checks = [Check("split_files", ok, "" if ok else
                    f"a split must list exactly one file named with {train_pat!r} and one named with {test_pat!r} (not both words); "
                    f"got train: {trains or 'none'}, test: {tests or 'none'}")]
    if not ok:
        return checks
    train, test = frames[trains[0]], frames[tests[0]]
    cols = [c for c in in_frame.columns if c in train.columns and c in test.columns]
    if label not in cols:
        return checks + [Check("split_covers_input", False, f"train/test files must keep the column {label!r}")]
    k_in, k_tr, k_te = Counter(row_keys(in_frame, cols)), Counter(row_keys(train, cols)), Counter(row_keys(test, cols))
    leaked = [k for k in k_tr if k in k_te and k_tr[k] + k_te[k] > k_in.get(k, 0)]
    checks.append(Check("split_no_leakage", not leaked,
                        f"{len(leaked)} input row(s) appear in both {trains[0]} and {tests[0]}, e.g. {leaked[0]}" if leaked else ""))
    union = k_tr + k_te
    extra, lost = union - k_in, k_in - union
    ok = not extra and not lost
    detail = "" if ok else (f"train + test must hold each input row exactly once, unchanged (columns {cols}): "
                            f"{sum(extra.values())} row(s) not in the input or repeated"
                            + (f" e.g. {next(iter(extra))}" if extra else "")
                            + f", {sum(lost.values())} input row(s) missing" + (f" e.g. {next(iter(lost))}" if lost else ""))
    checks.append(Check("split_covers_input", ok, detail))
    return checks
