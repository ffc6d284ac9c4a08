"""Strict oracles of the DP (data-processing) stage.

``dp_plan``        the JSON plan of data-engineering operations (a json step).
``dp_operation``   one chained pandas operation of that plan: its manifest and CSV outputs.
``dp_clean_split`` the fully specified clean + scale + stratified split task; it checks the
                   outputs against what it computes itself from the input, then re-runs the
                   same code on datasets generated with hypothesis (property re-runs), which
                   is what catches code that only works on the one file.

Every oracle returns one named ``Check`` per property. Category: ``artifact_missing`` when
an expected file (or the manifest) is absent or unparseable, ``runtime_error`` / ``timeout`` /
``resource_limit`` when the program did not finish cleanly, else ``semantic_mismatch``.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pytest_autopilot.core.errors import HarnessError
from pytest_autopilot.core.records import Category, Check, Verdict
from pytest_autopilot.oracles import OracleContext, categorised_verdict, exit_check, register, stderr_tail

SCRIPT_NAME = "main.py"  # what the python toolchain calls the program in its work dir
_ROUND = 9  # decimals used to compare float rows
_EPS = 1e-9




# --------------------------------------------------------------------------- helpers


def _verdict(name: str, checks: list[Check], artifact: set[str], execution=None) -> Verdict:
    """Verdict with the category of the most basic failure."""
    return categorised_verdict(name, checks, artifact, execution)


def _read_csv(source: Path | bytes | str) -> pd.DataFrame:
    if isinstance(source, bytes):
        return pd.read_csv(io.BytesIO(source))
    return pd.read_csv(source)


def _row_keys(frame: pd.DataFrame, columns: list[str]) -> list[tuple]:
    """Hashable row identities: floats rounded, missing values as one marker."""
    keys = []
    for row in frame[columns].itertuples(index=False, name=None):
        key = []
        for value in row:
            if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
                key.append("<NA>")
            elif isinstance(value, (float, np.floating)):
                key.append(round(float(value), _ROUND))
            elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
                key.append(round(float(value), _ROUND))
            else:
                key.append(str(value))
        keys.append(tuple(key))
    return keys


def _short(items, limit: int = 5) -> str:
    items = list(items)
    text = ", ".join(str(i) for i in items[:limit])
    return text + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def _numeric_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]


def _is_label_series(series: pd.Series) -> bool:
    values = series.dropna()
    return len(values) == len(series) and all(isinstance(v, str) for v in values)


# --------------------------------------------------------------------------- dp_plan

_SNAKE = r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$"


@register("dp_plan")
def dp_plan(ctx: OracleContext) -> Verdict:
    """A JSON plan ``{"operations": [{"name", "description"}, ...]}``.

    params: ``operations`` (exact count, default 8); ``name_pattern`` (default snake_case);
    ``min_description_chars`` (default 10); ``required``: mapping kind -> ``{keywords: [...],
    where: name|any, unique: bool}`` -- some operation's name (``where: name``) or name or
    description (``where: any``) must contain one of the keywords, case-insensitively; with
    ``unique: true`` exactly one operation may (the operation step keys its split checks on
    the name, so a second "split" operation would be judged as a train/test split too).
    """
    p = ctx.params
    want = int(p.get("operations", 8))
    pattern = re.compile(p.get("name_pattern", _SNAKE))
    min_chars = int(p.get("min_description_chars", 10))
    plan = ctx.answer
    checks: list[Check] = []
    is_obj = isinstance(plan, dict)
    checks.append(Check("plan_is_object", is_obj,
                        "" if is_obj else f'expected a JSON object {{"operations": [...]}}, got {type(plan).__name__}'))
    ops = plan.get("operations") if is_obj else None
    is_list = isinstance(ops, list) and all(isinstance(o, dict) for o in ops)
    checks.append(Check("operations_list", is_list,
                        "" if is_list else 'key "operations" must be a list of objects {"name": ..., "description": ...}'))
    if not is_list:
        return _verdict("dp_plan", checks, {"plan_is_object", "operations_list"})

    checks.append(Check("operation_count", len(ops) == want, f"{len(ops)} operations, expected exactly {want}"))
    names = [o.get("name") for o in ops]
    bad_names = [n for n in names if not isinstance(n, str) or not pattern.match(n)]
    checks.append(Check("names_snake_case", not bad_names,
                        f"names not matching {pattern.pattern}: {_short(repr(n) for n in bad_names)}" if bad_names else ""))
    dupes = sorted(n for n, c in Counter(map(str, names)).items() if c > 1)
    checks.append(Check("names_unique", not dupes, f"repeated names: {_short(dupes)}" if dupes else ""))
    thin = [str(o.get("name")) for o in ops
            if not isinstance(o.get("description"), str) or len(o["description"].strip()) < min_chars]
    checks.append(Check("descriptions_present", not thin,
                        f"operations without a description of at least {min_chars} characters: {_short(thin)}" if thin else ""))
    for kind, rule in (p.get("required") or {}).items():
        keywords = [k.lower() for k in rule.get("keywords", [kind])]
        where = rule.get("where", "any")
        texts = [(str(o.get("name", "")) + ("" if where == "name" else " " + str(o.get("description", "")))).lower()
                 for o in ops]
        hits = [str(o.get("name")) for o, t in zip(ops, texts) if any(k in t for k in keywords)]
        place = "an operation name" if where == "name" else "an operation name or description"
        if not hits:
            detail = f"no operation covers {kind}: {place} must mention one of {keywords}"
        elif rule.get("unique") and len(hits) > 1:
            detail = f"only one operation may be the {kind} operation ({place} mentioning one of {keywords}); got {hits}"
        else:
            detail = ""
        checks.append(Check(f"covers:{kind}", not detail, detail))
    return _verdict("dp_plan", checks, {"plan_is_object", "operations_list"})


# --------------------------------------------------------------------------- dp_operation


def _manifest_paths(manifest: Any) -> list | None:
    if isinstance(manifest, dict):
        manifest = manifest.get("outputs")
    if isinstance(manifest, list):
        return manifest
    return None


def _operation_inputs(ctx: OracleContext, written: list[str]) -> dict[str, Path | bytes]:
    """The data files the operation read.

    1. ``ctx.extra["inputs"]`` when the engine passes it (relative path -> pristine Path or
       bytes, exactly as laid out before the run); workspace files in it are ignored when
       other files are there (those are the previous item's outputs).
    2. Else, best effort: CSV files in the work dir that are neither workspace files nor
       listed in the manifest (the previous item's outputs; the prompt forbids overwriting them).
    3. Else the workspace files (the first operation reads the raw data).
    """
    given = ctx.extra.get("inputs") if ctx.extra else None
    if given:
        files = dict(given)
        previous = {rel: src for rel, src in files.items() if rel not in ctx.workspace}
        chosen = previous or files
    else:
        root = ctx.workdir.resolve()
        listed = {str(Path(w)) for w in written}
        chosen = {}
        for path in sorted(root.rglob("*.csv")):
            rel = str(path.relative_to(root))
            if rel not in listed and rel not in ctx.workspace and not rel.startswith("."):
                chosen[rel] = path
        if not chosen:
            chosen = {dest: ctx.assets[name] for dest, name in ctx.workspace.items()}
    return {rel: src for rel, src in sorted(chosen.items()) if str(rel).lower().endswith(".csv")}


def _matches(name: str, keywords) -> bool:
    name = name.lower()
    return any(k.lower() in name for k in keywords)


@register("dp_operation")
def dp_operation(ctx: OracleContext) -> Verdict:
    """One pandas operation of the plan: the files its manifest names.

    params: ``label`` (default ``Fruit``); ``output_dir`` (outputs must lie under it, default
    ``out``); ``nan_policy``: ``no_new`` (default: an output may hold no more missing values in
    a column than the input had; a new column no more than the input's incomplete rows),
    ``none`` (no missing value at all) or ``any``; name rules, each a keyword list matched
    against the operation's name: ``split_keywords`` (default [split]: exactly one train and
    one test file partitioning the input rows, no leakage), ``missing_keywords`` (no missing
    value left), ``duplicate_keywords`` (no duplicate row left); ``train_pattern`` /
    ``test_pattern`` (file-name substrings, default train / test; when a name holds both, the
    later one decides: ``split_train_test_test.csv`` is the test file).

    The operation's input: see ``_operation_inputs`` (best: the engine passes
    ``ctx.extra["inputs"]``, the files it laid out before the run).
    """
    p = ctx.params
    label = p.get("label", "Fruit")
    out_dir = p.get("output_dir", "out")
    op_name = str((ctx.item or {}).get("name", ""))
    artifact = {"manifest_present", "manifest_paths", "outputs_exist", "outputs_parse"}
    checks: list[Check] = []
    ran = exit_check(ctx.execution)
    if ran:
        checks.append(ran)

    paths = _manifest_paths(ctx.manifest)
    ok = bool(paths) and all(isinstance(x, str) for x in paths)
    checks.append(Check("manifest_present", ok, "" if ok else
                        'the answer needs a ```json block {"outputs": ["out/<file>.csv", ...]} naming at least one CSV file it wrote'
                        + ("" if ctx.manifest is None else f"; got {json.dumps(ctx.manifest)[:200]}")))
    if not ok:
        return _verdict("dp_operation", checks, artifact, ctx.execution)

    root = ctx.workdir.resolve()
    bad_paths = []
    for rel in paths:
        rp = Path(rel)
        inside = not rp.is_absolute() and ".." not in rp.parts and (root / rp).resolve().is_relative_to(root)
        under = not out_dir or (rp.parts[:1] == (out_dir,))
        if not (inside and under and rel.lower().endswith(".csv")):
            bad_paths.append(rel)
    checks.append(Check("manifest_paths", not bad_paths,
                        f"manifest paths must be relative .csv paths under {out_dir}/: {_short(bad_paths)}" if bad_paths else ""))
    missing = [rel for rel in paths if rel not in bad_paths and not (root / rel).is_file()]
    checks.append(Check("outputs_exist", not missing, f"listed but not written: {_short(missing)}" if missing else ""))
    frames: dict[str, pd.DataFrame] = {}
    unreadable = []
    for rel in paths:
        if rel in bad_paths or rel in missing:
            continue
        try:
            frames[rel] = _read_csv(root / rel)
        except Exception as exc:  # noqa: BLE001 -- any parse failure is the answer's
            unreadable.append(f"{rel} ({type(exc).__name__}: {str(exc)[:120]})")
    checks.append(Check("outputs_parse", not unreadable, f"not parseable as CSV: {_short(unreadable)}" if unreadable else ""))
    if bad_paths or missing or unreadable:
        return _verdict("dp_operation", checks, artifact, ctx.execution)

    try:
        inputs = {rel: _read_csv(src) for rel, src in _operation_inputs(ctx, paths).items()}
    except Exception as exc:  # noqa: BLE001
        raise HarnessError(Category.HARNESS_ERROR, f"dp_operation: cannot read the operation's inputs: {exc}") from exc
    if not inputs:
        raise HarnessError(Category.HARNESS_ERROR, "dp_operation: no CSV input known (pass ctx.extra['inputs'] or a workspace CSV)")
    in_frame = pd.concat(list(inputs.values()), ignore_index=True)
    in_rows = len(in_frame)

    no_label = [rel for rel, f in frames.items() if label not in f.columns]
    checks.append(Check("label_column", not no_label,
                        f"the label column {label!r} is missing from: {_short(no_label)} (keep it, with its original values)" if no_label else ""))
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
    checks.append(Check("not_empty", not empty, f"no data rows in: {_short(empty)}" if empty else ""))
    exploded = [f"{rel} ({len(f)} rows)" for rel, f in frames.items() if len(f) > in_rows]
    checks.append(Check("no_row_explosion", not exploded,
                        f"more rows than the input's {in_rows}: {_short(exploded)}" if exploded else ""))

    policy = p.get("nan_policy", "no_new")
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
        checks.append(Check("no_new_nan", not problems, f"{what}: {_short(problems)}" if problems else ""))

    infinite = []
    for rel, f in frames.items():
        for col in _numeric_columns(f):
            n = int(np.isinf(f[col].to_numpy(dtype=float)).sum())
            if n:
                infinite.append(f"{rel}:{col} ({n} infinite)")
    checks.append(Check("finite_values", not infinite, f"numeric columns must be finite: {_short(infinite)}" if infinite else ""))

    if _matches(op_name, p.get("missing_keywords", ["missing", "impute", "nan", "null"])):
        left = [f"{rel} ({int(f.isna().sum().sum())} missing)" for rel, f in frames.items() if f.isna().any().any()]
        checks.append(Check("missing_handled", not left,
                            f"operation {op_name!r} must leave no missing value: {_short(left)}" if left else ""))
    if _matches(op_name, p.get("duplicate_keywords", ["duplicate", "dedup"])):
        dup = [f"{rel} ({int(f.duplicated().sum())} duplicate rows)" for rel, f in frames.items() if f.duplicated().any()]
        checks.append(Check("duplicates_removed", not dup,
                            f"operation {op_name!r} must leave no duplicate row: {_short(dup)}" if dup else ""))
    if _matches(op_name, p.get("split_keywords", ["split"])):
        checks.extend(_split_checks(frames, in_frame, label, p.get("train_pattern", "train"), p.get("test_pattern", "test")))
    return _verdict("dp_operation", checks, artifact, ctx.execution)


def _split_checks(frames: dict[str, pd.DataFrame], in_frame: pd.DataFrame, label: str,
                  train_pat: str, test_pat: str) -> list[Check]:
    def role(rel: str) -> str | None:  # the later of the two words in the file name decides
        stem = Path(rel).stem.lower()
        at_train, at_test = stem.rfind(train_pat), stem.rfind(test_pat)
        if at_train < 0 and at_test < 0:
            return None
        return "train" if at_train > at_test else "test"

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
    k_in, k_tr, k_te = Counter(_row_keys(in_frame, cols)), Counter(_row_keys(train, cols)), Counter(_row_keys(test, cols))
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


# --------------------------------------------------------------------------- dp_clean_split

_CLEAN_DEFAULTS = {
    "input": "data/fruit.csv",
    "train": "out/train.csv",
    "test": "out/test.csv",
    "label": "Fruit",
    "channels": ["Red", "Green", "Blue"],
    "valid_range": [0, 255],
    "test_fraction": 0.2,
    "min_class_rows": 2,
    "class_slack_rows": 1,
    "ratio_tolerance": 0.02,
    "scale_tolerance": 1e-6,
    "property_examples": 8,
    "check_determinism": True,
}


def _clean_params(params: dict[str, Any]) -> dict[str, Any]:
    p = {**_CLEAN_DEFAULTS, **(params or {})}
    unknown = set(params or {}) - set(_CLEAN_DEFAULTS)
    if unknown:
        raise HarnessError(Category.HARNESS_ERROR, f"dp_clean_split: unknown params {sorted(unknown)}")
    return p


def expected_clean(source: Path | bytes | str, p: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The spec's clean rows, computed from the input file, and counts describing the input.

    Spec: read with pandas.read_csv; drop exact duplicate rows; drop rows with a missing
    value; drop rows with a channel outside valid_range (inclusive); drop every class with
    fewer than min_class_rows rows left. Rows keep their values as read.
    """
    label, channels = p["label"], list(p["channels"])
    low, high = p["valid_range"]
    raw = _read_csv(source)
    missing_cols = [c for c in [label, *channels] if c not in raw.columns]
    if missing_cols:
        raise HarnessError(Category.HARNESS_ERROR, f"input lacks columns {missing_cols}")
    raw = raw[[label, *channels]]
    info: dict[str, Any] = {"rows": len(raw), "duplicates": int(raw.duplicated().sum())}
    df = raw.drop_duplicates()
    info["incomplete"] = int(df.isna().any(axis=1).sum())
    df = df.dropna()
    df = df.astype({c: float for c in channels}).astype({label: str})
    in_range = np.ones(len(df), dtype=bool)
    for c in channels:
        in_range &= ((df[c] >= low) & (df[c] <= high)).to_numpy()
    info["out_of_range"] = int((~in_range).sum())
    df = df[in_range]
    counts = df[label].value_counts()
    small = sorted(counts[counts < p["min_class_rows"]].index)
    info["dropped_classes"] = small
    df = df[~df[label].isin(small)].reset_index(drop=True)
    info["classes"] = {str(k): int(v) for k, v in sorted(df[label].value_counts().items())}
    info["clean"] = len(df)
    return df, info


def _describe(info: dict[str, Any]) -> str:
    parts = [f"{info['rows']} rows", f"{info['duplicates']} exact duplicates",
             f"{info['incomplete']} rows with a missing value", f"{info['out_of_range']} rows out of range"]
    if info["dropped_classes"]:
        parts.append(f"classes with too few rows (to drop): {info['dropped_classes']}")
    parts.append(f"clean rows per class: {info['classes'] or 'none (no usable data: the program must exit non-zero)'}")
    return ", ".join(parts)


def _check_split_outputs(workdir: Path, clean: pd.DataFrame, p: dict[str, Any]) -> list[Check]:
    """Every property of out/train.csv and out/test.csv that the spec fixes."""
    label, channels = p["label"], list(p["channels"])
    columns = [label, *channels]
    checks: list[Check] = []
    paths = {"train": workdir / p["train"], "test": workdir / p["test"]}
    absent = [p[k] for k, path in paths.items() if not path.is_file()]
    checks.append(Check("outputs_exist", not absent, f"not written: {', '.join(absent)}" if absent else ""))
    if absent:
        return checks
    frames, errors = {}, []
    for key, path in paths.items():
        try:
            frames[key] = pd.read_csv(path)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"{p[key]}: {type(exc).__name__}: {str(exc)[:120]}")
    checks.append(Check("outputs_parse", not errors, "; ".join(errors)))
    if errors:
        return checks
    train, test = frames["train"], frames["test"]

    wrong = [f"{p[k]} has {list(f.columns)}" for k, f in frames.items() if list(f.columns) != columns]
    checks.append(Check("columns", not wrong, f"expected exactly {columns} in this order (no index column): {'; '.join(wrong)}" if wrong else ""))
    if wrong:
        return checks
    bad_types = []
    for key, f in frames.items():
        if not len(f):  # a header-only file has no dtypes to speak of; row_count reports it
            continue
        if not _is_label_series(f[label]):
            bad_types.append(f"{p[key]}:{label} is not text ({f[label].dtype})")
        for c in channels:
            if not pd.api.types.is_float_dtype(f[c]):
                bad_types.append(f"{p[key]}:{c} is {f[c].dtype}, not float")
    checks.append(Check("dtypes", not bad_types, "; ".join(bad_types)))
    nan = [f"{p[k]} ({int(f.isna().sum().sum())} missing)" for k, f in frames.items() if f.isna().any().any()]
    checks.append(Check("no_nan", not nan, f"missing values in {', '.join(nan)}" if nan else ""))
    if bad_types or nan:
        return checks

    dup = [f"{p[k]} ({int(f.duplicated().sum())})" for k, f in frames.items() if f.duplicated().any()]
    checks.append(Check("no_duplicate_rows", not dup, f"duplicate rows in {', '.join(dup)}" if dup else ""))
    n_clean, n_out = len(clean), len(train) + len(test)
    checks.append(Check("row_count", n_out == n_clean,
                        f"train {len(train)} + test {len(test)} = {n_out} rows; the input has {n_clean} clean unique rows" if n_out != n_clean else ""))

    want = Counter(clean[label])
    tr_c, te_c = Counter(train[label]), Counter(test[label])
    gaps = [f"{c}: train {tr_c.get(c, 0)}, test {te_c.get(c, 0)}" for c in sorted(want) if not tr_c.get(c) or not te_c.get(c)]
    unknown = sorted((set(tr_c) | set(te_c)) - set(want))
    ok = not gaps and not unknown
    checks.append(Check("classes_in_both", ok, "" if ok else
                        "every class with enough rows must appear in both files"
                        + (f"; missing: {'; '.join(gaps)}" if gaps else "") + (f"; unexpected classes: {unknown}" if unknown else "")))
    frac, slack = float(p["test_fraction"]), float(p["class_slack_rows"])
    off = [f"{c}: {te_c.get(c, 0)} of {n} in test (expected about {frac * n:g})"
           for c, n in sorted(want.items()) if abs(te_c.get(c, 0) - frac * n) > slack]
    checks.append(Check("stratified", not off, f"per-class test counts off: {'; '.join(off)}" if off else ""))
    allowed = max(float(p["ratio_tolerance"]) * n_clean, len(want) * slack)
    ok = abs(len(test) - frac * n_clean) <= allowed
    checks.append(Check("split_ratio", ok, "" if ok else f"{len(test)} test rows of {n_out}; expected {frac * n_clean:g} ± {allowed:g}"))

    ranges = []
    for c in channels:
        v = train[c].to_numpy(dtype=float)
        if not len(v):
            continue
        lo, hi = v.min(), v.max()
        if not ((abs(lo) <= _EPS and abs(hi - 1) <= _EPS) or (abs(lo) <= _EPS and abs(hi) <= _EPS)):
            ranges.append(f"{c}: train min {lo:.6g}, max {hi:.6g}")
    checks.append(Check("train_minmax", not ranges,
                        "in out/train.csv each channel must span exactly [0, 1] (min-max with the training rows' own min and max; "
                        f"all 0 if constant): {'; '.join(ranges)}" if ranges else ""))

    k_tr, k_te = set(_row_keys(train, columns)), set(_row_keys(test, columns))
    leaked = k_tr & k_te
    checks.append(Check("no_leakage", not leaked,
                        f"{len(leaked)} row(s) are in both files, e.g. {sorted(leaked)[0]}" if leaked else ""))
    if n_out != n_clean or not n_clean:
        return checks
    checks.extend(_reconstruction_checks(train, test, clean, p))
    return checks


def _reconstruction_checks(train: pd.DataFrame, test: pd.DataFrame, clean: pd.DataFrame, p: dict[str, Any]) -> list[Check]:
    """Invert the per-channel scaling and compare the rows with the clean input rows.

    Each channel's scaled values (train and test together) must be one increasing affine
    image of the clean raw values; inverting it gives back raw values, snapped to the nearest
    raw value, and the (label, raw channels) rows must equal the clean rows as a multiset.
    """
    label, channels = p["label"], list(p["channels"])
    tol = float(p["scale_tolerance"])
    both = pd.concat([train, test], ignore_index=True)
    raw_back = {}
    problems = []
    for c in channels:
        r = np.sort(clean[c].to_numpy(dtype=float))
        s_all = both[c].to_numpy(dtype=float)
        s = np.sort(s_all)
        r_span, s_span = r[-1] - r[0], s[-1] - s[0]
        if r_span == 0:
            if s_span > _EPS:
                problems.append(f"{c}: constant in the input but not in the output")
                continue
            raw_back[c] = np.full(len(s_all), r[0])
            continue
        if s_span <= _EPS:
            problems.append(f"{c}: all output values equal although the input varies")
            continue
        k = r_span / s_span
        mapped = r[0] + (s - s[0]) * k
        err = np.abs(mapped - r).max()
        if err > tol * max(1.0, r_span):
            i = int(np.abs(mapped - r).argmax())
            problems.append(f"{c}: not one linear scaling of the input values (sorted value {i}: "
                            f"input {r[i]:g}, output {s[i]:.6g} maps back to {mapped[i]:.6g})")
            continue
        back = r[0] + (s_all - s[0]) * k
        uniq = np.unique(r)
        pos = np.clip(np.searchsorted(uniq, back), 1, len(uniq) - 1) if len(uniq) > 1 else np.zeros(len(back), int)
        if len(uniq) > 1:
            left, right = uniq[pos - 1], uniq[pos]
            raw_back[c] = np.where(np.abs(back - left) <= np.abs(right - back), left, right)
        else:
            raw_back[c] = np.full(len(back), uniq[0])
    checks = [Check("affine_scaling", not problems,
                    "each channel must be min-max scaled with one (train) min and max for both files: " + "; ".join(problems)
                    if problems else "")]
    if problems:
        return checks
    got = Counter(zip(both[label].astype(str), *(raw_back[c] for c in channels)))
    want = Counter(zip(clean[label].astype(str), *(clean[c].to_numpy(dtype=float) for c in channels)))
    extra, lost = got - want, want - got
    ok = not extra and not lost
    checks.append(Check("rows_match_input", ok, "" if ok else
                        f"after undoing the scaling, {sum(extra.values())} output row(s) match no clean input row "
                        f"(e.g. {_fmt_row(next(iter(extra)))}) and {sum(lost.values())} clean input row(s) are missing "
                        f"(e.g. {_fmt_row(next(iter(lost)))}): labels and values must stay together"))
    return checks


def _fmt_row(row) -> str:
    return "(" + ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in row) + ")"


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

_RESERVED = {"nan", "null", "none", "true", "false", "inf", "infinity", "na"}


def _dataset_strategy():
    from hypothesis import strategies as st

    pools = [["apple", "banana", "orange"], ["kiwi", "mango"], ["lime"], ["red pear", "Quince", "fig", "date"]]
    name = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=8).filter(lambda s: s not in _RESERVED)
    names = st.one_of(st.sampled_from(pools), st.lists(name, min_size=1, max_size=4, unique=True))

    @st.composite
    def datasets(draw):
        classes = draw(names)
        value = (st.integers(0, 25500).map(lambda v: v / 100) if draw(st.booleans()) else st.integers(0, 255))
        rows = []
        for cls in classes:
            for _ in range(draw(st.integers(0, 12))):
                rows.append([cls, draw(value), draw(value), draw(value)])
        if rows:
            for _ in range(draw(st.integers(0, 3))):  # exact duplicates
                rows.append(list(rows[draw(st.integers(0, len(rows) - 1))]))
            for _ in range(draw(st.integers(0, 3))):  # missing values (the label too)
                rows[draw(st.integers(0, len(rows) - 1))][draw(st.integers(0, 3))] = None
            for _ in range(draw(st.integers(0, 2))):  # out-of-range readings
                rows[draw(st.integers(0, len(rows) - 1))][draw(st.integers(1, 3))] = draw(
                    st.sampled_from([-1, -20, 256, 300, 1023]))
            rows = draw(st.permutations(rows))
        return rows

    return datasets()


def _run_program(ctx: OracleContext, code: str, files: dict[str, bytes]) -> tuple[Any, dict[str, bytes | None]]:
    """Run ``code`` in a fresh sandbox work dir holding ``files``; return the result and the
    bytes of the train/test outputs (None when absent). The work dir is removed."""
    sandbox = ctx.sandbox
    workdir = sandbox.new_workdir(prefix="dp-rerun-")
    try:
        for rel, data in files.items():
            dest = workdir / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        (workdir / SCRIPT_NAME).write_text(code, encoding="utf-8")
        result = sandbox.run_python(SCRIPT_NAME, workdir, limits=ctx.limits)
        return result, workdir
    except BaseException:
        sandbox.cleanup(workdir)
        raise


def _example_problem(ctx: OracleContext, code: str, csv_text: str, p: dict[str, Any]) -> str | None:
    """Run the code on one generated dataset; None if it behaves as the spec says."""
    clean, info = expected_clean(csv_text.encode(), p)
    result, workdir = _run_program(ctx, code, {p["input"]: csv_text.encode()})
    try:
        if result.timed_out or result.limit_hit:
            return "the program was killed (" + ("time limit" if result.timed_out else f"{result.limit_hit} limit") + ")"
        if not len(clean):
            if result.returncode == 0:
                return "exit code 0, but no class has enough usable rows: the spec asks for a non-zero exit"
            return None
        if result.returncode != 0:
            return f"exit code {result.returncode}; {stderr_tail(result.stderr)}"
        failed = [c for c in _check_split_outputs(workdir, clean, p) if not c.passed]
        return "; ".join(f"check {c.name}: {c.detail}" for c in failed) or None
    finally:
        ctx.sandbox.cleanup(workdir)


def _property_check(ctx: OracleContext, code: str, p: dict[str, Any]) -> Check:
    from hypothesis import HealthCheck, Phase, example, given, settings
    from hypothesis import strategies as st

    failure: list[tuple[str, str, str]] = []
    runs = [0]

    def attempt(case: tuple[str, list[list]]) -> None:
        note, rows = case
        if failure:  # one failure is enough: stay fast, no shrinking, no replay
            return
        csv_text = _to_csv(rows, p)
        runs[0] += 1
        problem = _example_problem(ctx, code, csv_text, p)
        if problem:
            failure.append((note, csv_text, problem))

    total = int(p["property_examples"])
    explicit = _EXPLICIT[:total]
    test = given(st.tuples(st.just("generated"), _dataset_strategy()))(attempt)
    for case in reversed(explicit):
        test = example(case)(test)
    test = settings(max_examples=max(1, total - len(explicit)), deadline=None, database=None, derandomize=True,
                    phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
                    print_blob=False)(test)
    test()
    if not failure:
        return Check("property_reruns", True, f"{runs[0]} datasets of the same schema passed")
    note, csv_text, problem = failure[0]
    _clean, info = expected_clean(csv_text.encode(), p)
    lines = csv_text.splitlines()
    shown = "\n".join(lines[:25]) + (f"\n... ({len(lines) - 25} more lines)" if len(lines) > 25 else "")
    return Check("property_reruns", False,
                 f"the same program fails on another dataset of the same schema ({note}: {_describe(info)}): {problem}\n"
                 f"That {p['input']} was:\n{shown}")


@register("dp_clean_split")
def dp_clean_split(ctx: OracleContext) -> Verdict:
    """Clean, scale with the training split's min/max, stratified 80/20 split (see prompts/dp/clean_split.j2).

    params (defaults): input data/fruit.csv; train out/train.csv; test out/test.csv; label Fruit;
    channels [Red, Green, Blue]; valid_range [0, 255]; test_fraction 0.2; min_class_rows 2;
    class_slack_rows 1 (per-class test count within this many rows of test_fraction * n);
    ratio_tolerance 0.02; scale_tolerance 1e-6; property_examples 8 (sandbox re-runs on other
    datasets, 0 to skip); check_determinism true (a second run must write identical files).
    """
    p = _clean_params(ctx.params)
    artifact = {"outputs_exist", "outputs_parse"}
    if p["input"] not in ctx.workspace:
        raise HarnessError(Category.HARNESS_ERROR, f"dp_clean_split: {p['input']!r} is not a workspace path of the case")
    input_path = ctx.assets[ctx.workspace[p["input"]]]
    clean, _info = expected_clean(input_path, p)
    checks: list[Check] = []
    ran = exit_check(ctx.execution)
    if ran:
        checks.append(ran)
    checks.extend(_check_split_outputs(ctx.workdir, clean, p))
    if not all(c.passed for c in checks):
        return _verdict("dp_clean_split", checks, artifact, ctx.execution)
    if ctx.sandbox is None or not isinstance(ctx.answer, str):
        raise HarnessError(Category.HARNESS_ERROR, "dp_clean_split: re-runs need ctx.sandbox and the code as ctx.answer (a harness bug)")
    if p["check_determinism"]:
        checks.append(_determinism_check(ctx, input_path, p))
    if int(p["property_examples"]) > 0 and all(c.passed for c in checks):
        checks.append(_property_check(ctx, ctx.answer, p))
    return _verdict("dp_clean_split", checks, artifact, ctx.execution)


def _determinism_check(ctx: OracleContext, input_path: Path, p: dict[str, Any]) -> Check:
    first = {k: (ctx.workdir / p[k]).read_bytes() for k in ("train", "test")}
    result, workdir = _run_program(ctx, ctx.answer, {p["input"]: Path(input_path).read_bytes()})
    try:
        if result.returncode != 0 or result.timed_out:
            return Check("deterministic", False, f"a second run on the same input failed: exit code {result.returncode}; {stderr_tail(result.stderr)}")
        differ = [p[k] for k in ("train", "test")
                  if not (workdir / p[k]).is_file() or (workdir / p[k]).read_bytes() != first[k]]
        return Check("deterministic", not differ,
                     f"a second run on the same input wrote different {', '.join(differ)}: use a fixed random seed" if differ else "")
    finally:
        ctx.sandbox.cleanup(workdir)

