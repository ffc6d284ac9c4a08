"""How ``dp_reference`` compares a column the case does not list under ``columns``.

By its type in the reference's output: text and integers exactly; numbers within ``atol`` 1e-4
and ``rtol`` 1e-6 (a program that rounds to four decimals passes: issue 23). With a free split (``split.same_rows``
false, the default) the candidate may put other rows into training, so a feature the reference
scaled with training statistics comes out as another rescaling of the same values: such a
column -- one whose statistics in the reference's training file are pinned at a scaler's
canonical values (mean 0 and std 1, median 0 and IQR 1, min 0 and max 1) -- is compared up to
an increasing linear map, and those pinned statistics must hold in the candidate's training
file too, which is what catches a scaler fit on all rows. "std" is either ddof: numpy's and
scikit-learn's (ddof 0) and pandas' (ddof 1) are both a standardisation, and on the small
generated tables they differ by several percent.
"""

from __future__ import annotations

import math

import pandas as pd

from pytest_autopilot.oracles.dp_reference_params import ColumnSpec, DpReferenceParams

FLOAT_DEFAULT = ColumnSpec(type="float", atol=1e-4, rtol=1e-6)
# a fitted scaler's statistics: between two training sets of nearly equal size (class_slack_rows)
# they differ by ~1e-3 (ddof, one row more); a scaler fit on all rows is off by ~1e-2 or more
SCALED_TOLERANCE = 1e-3
_PINNED_WITHIN = 0.02
_CANONICAL = {"mean": 0.0, "std": 1.0, "median": 0.0, "iqr": 1.0, "min": 0.0, "max": 1.0}
_STATS = {  # each statistic's accepted readings: std by either ddof
    "mean": lambda v: (v.mean(),), "std": lambda v: (v.std(ddof=0), v.std(ddof=1)), "median": lambda v: (v.median(),),
    "iqr": lambda v: (v.quantile(0.75) - v.quantile(0.25),), "min": lambda v: (v.min(),), "max": lambda v: (v.max(),),
}
_SCALERS = (("mean", "std"), ("median", "iqr"), ("min", "max"))


def readings(name: str, values: pd.Series) -> tuple[float, ...]:
    """The statistic ``name`` of ``values`` by each accepted convention."""
    return tuple(float(x) for x in _STATS[name](values.astype(float)))


def distance(name: str, mine: pd.Series, wanted: tuple[float, ...]) -> float:
    """How far the statistic of ``mine`` is from the nearest of ``wanted``, in the closest pair of
    conventions (a candidate may standardise with the other ddof); NaN is only near NaN."""
    def gap(a: float, b: float) -> float:
        if math.isnan(a) or math.isnan(b):
            return 0.0 if math.isnan(a) and math.isnan(b) else math.inf
        return abs(a - b)

    return min(gap(a, b) for a in readings(name, mine) for b in wanted)


def column_specs(want: dict[str, pd.DataFrame], p: DpReferenceParams) -> dict[str, ColumnSpec]:
    """The spec of every column of the reference's output: the declared one, else the default."""
    specs: dict[str, ColumnSpec] = {}
    for frame in want.values():
        for column in frame.columns:
            if column not in specs:
                specs[column] = p.columns.get(column) or _default(column, frame[column], want, p)
    return specs


def _default(column: str, values: pd.Series, want: dict[str, pd.DataFrame], p: DpReferenceParams) -> ColumnSpec:
    if not pd.api.types.is_float_dtype(values):
        return ColumnSpec()  # type auto: the reference's; integers and text compare exactly
    free_split = p.split is not None and not p.split.same_rows
    if not free_split or column in (*p.rows.key, p.split.label):
        return FLOAT_DEFAULT
    train = want[p.file("train").path][column].dropna()
    pinned = [name for pair in _SCALERS if len(train) > 1 and all(
        distance(name, train, (_CANONICAL[name],)) <= _PINNED_WITHIN for name in pair) for name in pair]
    if not pinned:
        return FLOAT_DEFAULT
    return ColumnSpec(type="float", match="affine", stats=pinned, atol=SCALED_TOLERANCE, rtol=SCALED_TOLERANCE)
