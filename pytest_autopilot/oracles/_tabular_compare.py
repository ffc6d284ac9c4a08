"""Compare a candidate's output tables with the reference's (``oracles.dp_reference``).

Every detail describes the failed property in counts and differences -- "column ax of
out/train.csv differs from the expected values in 125/125 rows, max abs diff 2.1" -- and never
quotes a value of the reference's output, which would hand the answer key to the model in the
repair prompt. Values of the candidate's own output (an unexpected key) may be named.
"""

from __future__ import annotations

import io
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from pytest_autopilot.core.records import Check
from pytest_autopilot.core.util import listed
from pytest_autopilot.oracles._tabular_defaults import column_specs, distance, readings
from pytest_autopilot.oracles.dp_reference_params import ColumnSpec, DpReferenceParams
from pytest_autopilot.oracles.tabular import row_keys

Frames = dict[str, pd.DataFrame]
_TYPE_WORDS = {"int": "integers", "float": "numbers", "str": "text", "bool": "booleans"}


def read_outputs(files: dict[str, bytes | None]) -> tuple[Frames, list[Check]]:
    """Parse the declared output files (None: not written): ``outputs_exist``, ``outputs_parse``."""
    absent = [path for path, data in files.items() if data is None]
    checks = [Check("outputs_exist", not absent, f"not written: {', '.join(absent)}" if absent else "")]
    if absent:
        return {}, checks
    frames, errors = {}, []
    for path, data in files.items():
        try:
            frames[path] = pd.read_csv(io.BytesIO(data))
        except Exception as exc:  # noqa: BLE001 -- any parse failure is the candidate's
            errors.append(f"{path}: {type(exc).__name__}: {str(exc)[:120]}")
    checks.append(Check("outputs_parse", not errors, "; ".join(errors)))
    return frames, checks


def read_files(root: Path, paths: list[str]) -> dict[str, bytes | None]:
    return {path: (root / path).read_bytes() if (root / path).is_file() else None for path in paths}


def kind_of(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_integer_dtype(series):
        return "int"
    if pd.api.types.is_float_dtype(series):
        return "float"
    return "str"


def declaration_problems(want: Frames, p: DpReferenceParams) -> list[str]:
    """Where the case's declarations do not fit the reference's own output (a case error: a
    misspelt column would otherwise fall back to the defaults unnoticed)."""
    present = set().union(*(f.columns for f in want.values()))
    named = {*p.columns, *p.rows.key, *p.rows.sort_by, *([p.split.label] if p.split else [])}
    problems = [f"column {c} is not in the reference's output" for c in sorted(named - present)]
    for path, frame in want.items():
        for column, spec in p.columns.items():
            if column in frame.columns and len(frame) and spec.type != "auto":
                actual = kind_of(frame[column])
                if not fits(actual, spec.type):
                    problems.append(f"column {column} of the reference's {path} holds {_TYPE_WORDS[actual]}, "
                                    f"declared type {spec.type}")
    return problems


def compare_outputs(got: Frames, want: Frames, p: DpReferenceParams) -> list[Check]:
    """Every declared property of the candidate's tables against the reference's; later groups
    only run when the earlier ones hold (values mean nothing under the wrong columns)."""
    checks = [_columns_check(got, want, p)]
    if checks[-1].passed:
        checks.append(_types_check(got, want, p))
    if not checks[-1].passed:
        return checks
    checks.append(_finite_check(got, want))
    if not checks[-1].passed:  # an infinity breaks every comparison of values below
        return checks
    checks.append(_row_count_check(got, want, p))
    if p.split:
        checks.extend(split_checks(got, want, p))
    specs = column_specs(want, p)
    for label, mine, theirs in _compared_tables(got, want, p):
        checks.extend(compare_table(label, mine, theirs, p, specs))
    stats = _statistics_problems(got, want, p, specs)
    if stats is not None:
        checks.append(Check("statistics", not stats, "; ".join(stats)))
    return _merged(checks)


def _merged(checks: list[Check]) -> list[Check]:
    """One check per name: the tables compared one by one each add their findings."""
    out: dict[str, Check] = {}
    for c in checks:
        if c.name in out:
            prev = out[c.name]
            detail = "; ".join(d for d in (prev.detail, c.detail) if d)
            out[c.name] = Check(c.name, prev.passed and c.passed, detail)
        else:
            out[c.name] = c
    return list(out.values())


def _columns_check(got: Frames, want: Frames, p: DpReferenceParams) -> Check:
    wrong = []
    for path, frame in got.items():
        mine, theirs = list(frame.columns), list(want[path].columns)
        if (mine != theirs) if p.column_order else (sorted(mine) != sorted(theirs)):
            wrong.append(f"{path} has {mine}")
    order = " in this order" if p.column_order else ""
    expected = list(next(iter(want.values())).columns) if len({tuple(f.columns) for f in want.values()}) == 1 else None
    wanted = f"exactly {expected}{order}" if expected else f"the columns of the task{order}"
    return Check("columns", not wrong, f"expected {wanted} (no index column): {'; '.join(wrong)}" if wrong else "")


def fits(actual: str, expected: str) -> bool:
    return actual == expected or (expected == "float" and actual == "int")  # integers are numbers too


def expected_kind(spec: ColumnSpec, reference: pd.Series) -> str:
    return kind_of(reference) if spec.type == "auto" else spec.type


def _types_check(got: Frames, want: Frames, p: DpReferenceParams) -> Check:
    bad = []
    for path, frame in got.items():
        if not len(frame) or not len(want[path]):  # a header-only file has no types; row_count reports it
            continue
        for column in frame.columns:
            expected, actual = expected_kind(p.column(column), want[path][column]), kind_of(frame[column])
            if not fits(actual, expected):
                bad.append(f"column {column} of {path} holds {_TYPE_WORDS[actual]}, expected {_TYPE_WORDS[expected]}")
    return Check("column_types", not bad, "; ".join(bad))


def _infinities(frame: pd.DataFrame) -> dict[str, int]:
    """Per numeric column, how many values are +inf or -inf."""
    out = {}
    for column in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[column]) and not pd.api.types.is_bool_dtype(frame[column]):
            count = int(np.isinf(frame[column].to_numpy(dtype=float)).sum())
            if count:
                out[column] = count
    return out


def _finite_check(got: Frames, want: Frames) -> Check:
    """``finite_values``: no infinity where the reference's column has none (a division by a zero
    spread, a log of 0). Its values cannot be compared, so it is the candidate's failure."""
    bad = []
    for path, frame in got.items():
        allowed = _infinities(want[path])
        bad += [f"column {column} of {path} holds {count} infinite value(s)"
                for column, count in _infinities(frame).items() if column not in allowed]
    return Check("finite_values", not bad, "; ".join(bad) + (": every number must be finite" if bad else ""))


def _row_count_check(got: Frames, want: Frames, p: DpReferenceParams) -> Check:
    off = []
    for f in p.files:
        n, expected = len(got[f.path]), len(want[f.path])
        if abs(n - expected) > f.row_slack:
            off.append(f"{f.path} has {n} rows, expected {expected}" + (f"±{f.row_slack}" if f.row_slack else ""))
    return Check("row_count", not off, "; ".join(off))


# ---- split invariants


def _identities(frame: pd.DataFrame, p: DpReferenceParams) -> list[tuple]:
    return row_keys(frame, p.rows.key or list(frame.columns))


def split_checks(got: Frames, want: Frames, p: DpReferenceParams) -> list[Check]:
    """``split_disjoint``: no row in both parts; ``split_stratified``: per class, the test part
    holds as many rows as the reference's, within ``class_slack_rows``."""
    split = p.split
    train, test = got[p.file("train").path], got[p.file("test").path]
    checks = []
    if split.disjoint:
        both = set(_identities(train, p)) & set(_identities(test, p))
        what = "keys" if p.rows.key else "rows"
        checks.append(Check("split_disjoint", not both, "" if not both else
                            f"{len(both)} {what} are in both {p.file('train').path} and {p.file('test').path}"
                            + (f" (e.g. {_key_text(sorted(both)[0], p.rows.key)})" if p.rows.key else "")))
    if split.stratified:
        mine = Counter(display(v) for v in test[split.label])
        theirs = Counter(display(v) for v in want[p.file("test").path][split.label])
        slack = split.class_slack_rows
        off = [f"class {c} has {mine.get(c, 0)} rows, expected {n}±{slack}"
               for c, n in sorted(theirs.items()) if abs(mine.get(c, 0) - n) > slack]
        unknown = sorted(set(mine) - set(theirs))
        if unknown:
            off.append(f"classes not expected in it: {listed(unknown)}")
        checks.append(Check("split_stratified", not off,
                            f"test split is not stratified: {'; '.join(off)}" if off else ""))
    return checks


def display(value) -> str:
    """A label value as text; 2.0 read back from a CSV shows as 2."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _key_text(key: tuple, columns: list[str]) -> str:
    return ", ".join(f"{c}={display(v)}" for c, v in zip(columns, key))


# ---- row pairing and values


def _compared_tables(got: Frames, want: Frames, p: DpReferenceParams):
    """(label, candidate, reference) tables compared row by row: each file, or -- when the split
    may pick other rows -- train and test together, whose rows then must be the reference's."""
    if p.split and not p.split.same_rows:
        parts = [p.file("train").path, p.file("test").path]
        yield (" + ".join(parts), pd.concat([got[x] for x in parts], ignore_index=True),
               pd.concat([want[x] for x in parts], ignore_index=True))
        parts = set(parts)
    else:
        parts = set()
    for path in got:
        if path not in parts:
            yield path, got[path], want[path]


def _paired(label: str, mine: pd.DataFrame, theirs: pd.DataFrame, p: DpReferenceParams):
    """Both tables with row i of one paired with row i of the other, and the pairing's check."""
    key = p.rows.key
    if key:
        return _paired_by_key(label, mine, theirs, key)
    if len(mine) != len(theirs):
        return None, None, Check("rows_match", False, f"{label}: {len(mine)} rows, expected {len(theirs)}: rows cannot be paired")
    if p.rows.ordered:
        return mine.reset_index(drop=True), theirs.reset_index(drop=True), Check("rows_match", True)
    by = p.rows.sort_by or list(theirs.columns)
    return _sorted(mine, by), _sorted(theirs, by), Check("rows_match", True)


def _sorted(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    return frame.sort_values(by, kind="mergesort", na_position="last").reset_index(drop=True)


def _paired_by_key(label: str, mine: pd.DataFrame, theirs: pd.DataFrame, key: list[str]):
    mine_keys, their_keys = row_keys(mine, key), row_keys(theirs, key)
    repeated = [k for k, n in Counter(mine_keys).items() if n > 1]
    if repeated:
        return None, None, Check("rows_match", False, f"{label}: {len(repeated)} key(s) {key} occur more than once, "
                                                      f"e.g. {_key_text(repeated[0], key)}")
    position = {k: i for i, k in enumerate(mine_keys)}
    common = [k for k in their_keys if k in position]
    missing = len(their_keys) - len(common)
    expected = set(their_keys)
    extra = [k for k in mine_keys if k not in expected]
    problems = []
    if missing:
        problems.append(f"{missing} of the {len(their_keys)} expected rows are missing")
    if extra:
        problems.append(f"{len(extra)} rows are not expected (e.g. {_key_text(extra[0], key)})")
    check = Check("rows_match", not problems, f"{label}: {', '.join(problems)}" if problems else "")
    theirs_at = {k: i for i, k in enumerate(their_keys)}
    a = mine.iloc[[position[k] for k in common]].reset_index(drop=True)
    b = theirs.iloc[[theirs_at[k] for k in common]].reset_index(drop=True)
    return a, b, check


def compare_table(label: str, mine: pd.DataFrame, theirs: pd.DataFrame, p: DpReferenceParams,
                  specs: dict[str, ColumnSpec]) -> list[Check]:
    """``rows_match`` (pairing) and ``values`` (every non-key column within its tolerance, ``specs``:
    see ``column_specs``)."""
    a, b, pairing = _paired(label, mine, theirs, p)
    if a is None:
        return [pairing]
    columns_by_problem: dict[str, list[str]] = {}
    for column in theirs.columns:
        if column in p.rows.key or column not in a.columns:
            continue
        problem = column_difference(a[column], b[column], specs[column])
        if problem:
            columns_by_problem.setdefault(problem, []).append(column)
    problems = [f"column {cols[0]} of {label} {problem}" if len(cols) == 1 else
                f"columns {', '.join(cols)} of {label}: each {problem}" for problem, cols in columns_by_problem.items()]
    return [pairing, Check("values", not problems, "; ".join(problems))]


def column_difference(got: pd.Series, want: pd.Series, spec: ColumnSpec) -> str | None:
    """What differs between two paired columns, as counts and sizes (None: equal)."""
    n = len(want)
    if not n:
        return None
    if not pd.api.types.is_numeric_dtype(want):
        differ = int((got.astype(str).to_numpy() != want.astype(str).to_numpy()).sum())
        return f"differs from the expected values in {differ}/{n} rows" if differ else None
    # column_types has passed: a non-numeric dtype here is a header-only part of a union
    x = pd.to_numeric(got, errors="coerce").to_numpy(dtype=float)
    y = want.to_numpy(dtype=float)
    if spec.match == "affine":
        return _affine_difference(x, y, spec)
    close = np.isclose(x, y, atol=spec.atol, rtol=spec.rtol, equal_nan=True)
    if close.all():
        return None
    diff = np.abs(x - y)[~close]
    size = f", max abs diff {np.nanmax(diff):.2g}" if np.isfinite(diff).any() else ", missing values where numbers belong"
    return f"differs from the expected values in {int((~close).sum())}/{n} rows{size}"


def _affine_difference(x: np.ndarray, y: np.ndarray, spec: ColumnSpec) -> str | None:
    """Equal up to one increasing linear map x = a*y + b (fitted by least squares over the finite
    values; missing and infinite ones must sit where the reference has them)."""
    if not np.array_equal(np.isnan(x), np.isnan(y)):
        return "has missing values in other rows than expected"
    if not np.array_equal(np.isinf(x), np.isinf(y)):
        return "has infinite values in other rows than expected"
    x, y = x[np.isfinite(y)], y[np.isfinite(y)]
    if not len(y):
        return None
    if np.ptp(y) == 0:
        spread = np.ptp(x)
        return None if spread <= spec.atol else f"varies (by {spread:.2g}) where the expected values are all equal"
    try:
        a, b = np.polyfit(y, x, 1)
    except (np.linalg.LinAlgError, ValueError):  # e.g. values near the float limits
        return "is not one linear rescaling of the expected values (no fit exists)"
    fitted = a * y + b
    close = np.isclose(x, fitted, atol=spec.atol, rtol=spec.rtol)
    if a > 0 and close.all():
        return None
    if a <= 0:
        return "is not an increasing rescaling of the expected values (it runs the other way)"
    return (f"is not one linear rescaling of the expected values: after the best fit {int((~close).sum())}/{len(x)} "
            f"rows are off, by up to {np.abs(x - fitted).max():.2g}")


# ---- fitted statistics


def _statistics_problems(got: Frames, want: Frames, p: DpReferenceParams,
                         specs: dict[str, ColumnSpec]) -> list[str] | None:
    """Declared statistics of each column in the files that hold the reference's rows: with a
    free split, the training file (what a fitted transform is fit on). None: none declared."""
    wanted = {c: s.stats for c, s in specs.items() if s.stats}
    if not wanted:
        return None
    paths = [p.file("train").path] if p.split and not p.split.same_rows else [f.path for f in p.files]
    problems = []
    for path in paths:
        for column, names in wanted.items():
            if column not in got[path].columns or not len(got[path]):
                continue
            spec = specs[column]
            for name in names:
                theirs = readings(name, want[path][column])
                off = distance(name, got[path][column], theirs)
                scale = max((abs(x) for x in theirs if not math.isnan(x)), default=0.0)
                if off > spec.atol + spec.rtol * scale:
                    problems.append(f"the {name} of column {column} in {path} differs from the expected by {off:.2g}")
    return problems
