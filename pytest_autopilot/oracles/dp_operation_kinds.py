"""What an operation of a known kind must do (``oracles.dp_operation``): the defining property
of dropping, encoding and scaling, recognised, like the other name rules, by keywords in the
operation's name. Splitting has its own checks in ``dp_operation``.

* dropping: the output holds only input rows, unchanged, and only input columns;
* encoding: the new column(s) give each class one code, and different classes different codes;
* scaling: each changed numeric column of a split is one linear map of the input, the same for
  the training and the test file, and not fitted with statistics of both files together.

Details describe the failed property; they name columns and files, never the expected numbers.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from pytest_autopilot.core.records import Check
from pytest_autopilot.core.util import listed
from pytest_autopilot.oracles.tabular import numeric_columns, row_keys

Frames = dict[str, pd.DataFrame]
_CLOSE = dict(rtol=1e-6, atol=1e-6)


def drop_checks(frames: Frames, in_frame: pd.DataFrame, op_name: str) -> list[Check]:
    """``drop_only_removes``: every output row is an input row (on the output's columns), each at
    most as often as in the input, and no column is new."""
    wrong = []
    source = Counter(row_keys(in_frame, list(in_frame.columns)))
    for rel, frame in frames.items():
        new = [c for c in frame.columns if c not in in_frame.columns]
        if new:
            wrong.append(f"{rel} has columns the input does not have: {listed(new)}")
            continue
        kept = Counter(row_keys(in_frame, list(frame.columns))) if list(frame.columns) != list(in_frame.columns) else source
        extra = Counter(row_keys(frame, list(frame.columns))) - kept
        if extra:
            wrong.append(f"{rel} holds {sum(extra.values())} row(s) that are not unchanged input rows")
    return [Check("drop_only_removes", not wrong,
                  f"operation {op_name!r} drops rows or columns: it may not add or change any: {'; '.join(wrong)}"
                  if wrong else "")]


def encode_checks(frames: Frames, in_frame: pd.DataFrame, label: str, op_name: str) -> list[Check]:
    """``encoding_one_to_one``: the columns the operation added encode the label: one code per
    class, the same in every file, and different classes get different codes."""
    problems = []
    new_columns = {rel: [c for c in f.columns if c not in in_frame.columns] for rel, f in frames.items()}
    codes: dict[str, set[tuple]] = {}
    for rel, frame in frames.items():
        added = new_columns[rel]
        if not added:
            problems.append(f"{rel} has no new column holding the encoded {label}")
            continue
        if label not in frame.columns:
            continue  # label_column reports it
        for cls, group in frame.groupby(frame[label].astype(str)):
            codes.setdefault(cls, set()).update(row_keys(group, added))
    several = sorted(cls for cls, seen in codes.items() if len(seen) > 1)
    if several:
        problems.append(f"classes with more than one code: {listed(several)}")
    single = Counter(next(iter(seen)) for seen in codes.values() if len(seen) == 1)
    if any(n > 1 for n in single.values()):
        problems.append("different classes share one code")
    return [Check("encoding_one_to_one", not problems,
                  f"operation {op_name!r} must add a column encoding {label}, one code per class: {'; '.join(problems)}"
                  if problems else "")]


def scale_checks(frames: Frames, inputs: Frames, role, op_name: str) -> list[Check]:
    """``scaling_same_for_test`` and ``scaling_fitted_on_train``, when the operation's input is a
    split (one training and one test file, ``role(rel)`` tells which) and its output is one too.
    Rows are paired by position: a scaling keeps the rows in order."""
    pair_in, pair_out = _split_pair(inputs, role), _split_pair(frames, role)
    if pair_in is None or pair_out is None:
        return []
    (train_in, test_in), (train_out, test_out) = pair_in, pair_out
    if len(train_in) != len(train_out) or len(test_in) != len(test_out):
        return []  # not a row-wise transform: the row checks say what is wrong
    differ, leaked = [], []
    for column in numeric_columns(train_out):
        if column not in numeric_columns(train_in) or column not in test_in.columns or column not in test_out.columns:
            continue
        x, y = train_in[column].to_numpy(float), train_out[column].to_numpy(float)
        if np.allclose(x, y, equal_nan=True, **_CLOSE):
            continue  # not scaled
        fit = _linear_map(x, y)
        if fit is None:
            continue  # not a linear scaling (a log, a clip): no statistics to compare
        a, b = fit
        t_in, t_out = test_in[column].to_numpy(float), test_out[column].to_numpy(float)
        if not np.allclose(a * t_in + b, t_out, equal_nan=True, **_CLOSE):
            differ.append(column)
        elif _fitted_on_both(a, b, x, t_in):
            leaked.append(column)
    return [
        Check("scaling_same_for_test", not differ, "" if not differ else
              f"operation {op_name!r}: the test file's {listed(differ)} must be scaled with the same map as the "
              "training file's (fitted on the training file, then applied to both)"),
        Check("scaling_fitted_on_train", not leaked, "" if not leaked else
              f"operation {op_name!r}: {listed(leaked)} scaled with statistics of the training and test files "
              "together; fit the scaling on the training file only"),
    ]


def _split_pair(frames: Frames, role) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    trains = [rel for rel in frames if role(Path(rel).name) == "train"]
    tests = [rel for rel in frames if role(Path(rel).name) == "test"]
    if len(trains) != 1 or len(tests) != 1:
        return None
    return frames[trains[0]], frames[tests[0]]


def _linear_map(x: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    """(a, b) with y = a*x + b on every finite pair, a != 0; None when no such map exists."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 2 or np.ptp(x) == 0:
        return None
    a = (y.max() - y.min()) / (x.max() - x.min()) * (1 if np.corrcoef(x, y)[0, 1] >= 0 else -1)
    b = float(np.mean(y - a * x))
    if a == 0 or not np.allclose(a * x + b, y, **_CLOSE):
        return None
    return float(a), b


def _standard_maps(values: np.ndarray) -> list[tuple[float, float]]:
    """The maps the usual scalers fit on ``values``: min-max, standard (both ddof), robust, max-abs."""
    v = values[np.isfinite(values)]
    if len(v) < 2:
        return []
    spans = [(v.min(), v.max() - v.min()), (v.mean(), v.std()), (v.mean(), v.std(ddof=1)),
             (np.median(v), np.quantile(v, 0.75) - np.quantile(v, 0.25)), (0.0, np.abs(v).max())]
    return [(1 / span, -centre / span) for centre, span in spans if span > 0]


def _fitted_on_both(a: float, b: float, train: np.ndarray, test: np.ndarray) -> bool:
    """The map is one a usual scaler fits on train and test together, and not one it fits on train."""
    def matches(maps):
        return any(np.isclose(a, ma, rtol=1e-5, atol=0) and np.isclose(b, mb, rtol=1e-5, atol=1e-9) for ma, mb in maps)

    return matches(_standard_maps(np.concatenate([train, test]))) and not matches(_standard_maps(train))
