"""What a correct answer to the DP clean-split task is (see prompts/dp/clean_split.j2): the clean
rows computed from the input file by the spec, and every property of out/train.csv and
out/test.csv the spec fixes -- checked against those rows, so an answer is judged by what
it wrote, never by how. ``oracles.dp_clean_split`` applies this to the case's own run and
to its re-runs on other datasets.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pytest_autopilot.core.errors import HarnessError
from pytest_autopilot.core.records import Category, Check
from pytest_autopilot.oracles.tabular import EPS, is_label_series, read_csv, row_keys

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


def clean_params(params: dict[str, Any]) -> dict[str, Any]:
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
    raw = read_csv(source)
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


def describe(info: dict[str, Any]) -> str:
    parts = [f"{info['rows']} rows", f"{info['duplicates']} exact duplicates",
             f"{info['incomplete']} rows with a missing value", f"{info['out_of_range']} rows out of range"]
    if info["dropped_classes"]:
        parts.append(f"classes with too few rows (to drop): {info['dropped_classes']}")
    parts.append(f"clean rows per class: {info['classes'] or 'none (no usable data: the program must exit non-zero)'}")
    return ", ".join(parts)


def check_split_outputs(workdir: Path, clean: pd.DataFrame, p: dict[str, Any]) -> list[Check]:
    """Every property of out/train.csv and out/test.csv that the spec fixes."""
    checks: list[Check] = []
    frames = _read_outputs(workdir, p, checks)
    if frames is None or not _form_checks(frames, p, checks):
        return checks
    train, test = frames["train"], frames["test"]
    checks += _count_checks(train, test, clean, p)
    checks += _scaling_checks(train, test, p)
    if len(train) + len(test) != len(clean) or not len(clean):
        return checks
    checks.extend(_reconstruction_checks(train, test, clean, p))
    return checks


def _read_outputs(workdir: Path, p: dict[str, Any], checks: list[Check]) -> dict[str, pd.DataFrame] | None:
    """The two files, read (``outputs_exist``, ``outputs_parse``); None when one is absent or unreadable."""
    paths = {"train": workdir / p["train"], "test": workdir / p["test"]}
    absent = [p[k] for k, path in paths.items() if not path.is_file()]
    checks.append(Check("outputs_exist", not absent, f"not written: {', '.join(absent)}" if absent else ""))
    if absent:
        return None
    frames, errors = {}, []
    for key, path in paths.items():
        try:
            frames[key] = pd.read_csv(path)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"{p[key]}: {type(exc).__name__}: {str(exc)[:120]}")
    checks.append(Check("outputs_parse", not errors, "; ".join(errors)))
    return None if errors else frames


def _form_checks(frames: dict[str, pd.DataFrame], p: dict[str, Any], checks: list[Check]) -> bool:
    """The columns, their types and no missing value (appended to ``checks``); False when any failed."""
    label, channels = p["label"], list(p["channels"])
    columns = [label, *channels]
    wrong = [f"{p[k]} has {list(f.columns)}" for k, f in frames.items() if list(f.columns) != columns]
    checks.append(Check("columns", not wrong, f"expected exactly {columns} in this order (no index column): {'; '.join(wrong)}" if wrong else ""))
    if wrong:
        return False
    bad_types = []
    for key, f in frames.items():
        if not len(f):  # a header-only file has no dtypes to speak of; row_count reports it
            continue
        if not is_label_series(f[label]):
            bad_types.append(f"{p[key]}:{label} is not text ({f[label].dtype})")
        for c in channels:
            if not pd.api.types.is_float_dtype(f[c]):
                bad_types.append(f"{p[key]}:{c} is {f[c].dtype}, not float")
    checks.append(Check("dtypes", not bad_types, "; ".join(bad_types)))
    nan = [f"{p[k]} ({int(f.isna().sum().sum())} missing)" for k, f in frames.items() if f.isna().any().any()]
    checks.append(Check("no_nan", not nan, f"missing values in {', '.join(nan)}" if nan else ""))
    return not (bad_types or nan)


def _count_checks(train: pd.DataFrame, test: pd.DataFrame, clean: pd.DataFrame, p: dict[str, Any]) -> list[Check]:
    """No duplicates, every clean row kept, every class in both files, stratified, the test share."""
    label = p["label"]
    checks = []
    dup = [f"{p[k]} ({int(f.duplicated().sum())})" for k, f in (("train", train), ("test", test)) if f.duplicated().any()]
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
    return checks


def _scaling_checks(train: pd.DataFrame, test: pd.DataFrame, p: dict[str, Any]) -> list[Check]:
    """Each channel of the training file min-max scaled to [0, 1]; no row in both files."""
    channels = list(p["channels"])
    ranges = []
    for c in channels:
        v = train[c].to_numpy(dtype=float)
        if not len(v):
            continue
        lo, hi = v.min(), v.max()
        if not ((abs(lo) <= EPS and abs(hi - 1) <= EPS) or (abs(lo) <= EPS and abs(hi) <= EPS)):
            ranges.append(f"{c}: train min {lo:.6g}, max {hi:.6g}")
    checks = [Check("train_minmax", not ranges,
                    "in out/train.csv each channel must span exactly [0, 1] (min-max with the training rows' own min and max; "
                    f"all 0 if constant): {'; '.join(ranges)}" if ranges else "")]
    columns = [p["label"], *channels]
    k_tr, k_te = set(row_keys(train, columns)), set(row_keys(test, columns))
    leaked = k_tr & k_te
    checks.append(Check("no_leakage", not leaked,
                        f"{len(leaked)} row(s) are in both files, e.g. {sorted(leaked)[0]}" if leaked else ""))
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
            if s_span > EPS:
                problems.append(f"{c}: constant in the input but not in the output")
                continue
            raw_back[c] = np.full(len(s_all), r[0])
            continue
        if s_span <= EPS:
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
