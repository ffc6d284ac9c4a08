"""Small pandas helpers the DP oracles share: reading a CSV from a path or bytes, hashable row
identities for multiset comparisons, dtype tests and short lists for check details."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd

ROUND = 9  # decimals used to compare float rows
EPS = 1e-9


def read_csv(source: Path | bytes | str) -> pd.DataFrame:
    if isinstance(source, bytes):
        return pd.read_csv(io.BytesIO(source))
    return pd.read_csv(source)


def row_keys(frame: pd.DataFrame, columns: list[str]) -> list[tuple]:
    """Hashable row identities: numbers as floats rounded to ``ROUND`` decimals (so 3 and 3.0
    are one value), missing values as one marker, everything else as text."""
    keys = []
    for row in frame[columns].itertuples(index=False, name=None):
        key = []
        for value in row:
            if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
                key.append("<NA>")
            elif isinstance(value, (float, np.floating)):
                key.append(round(float(value), ROUND))
            elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
                key.append(round(float(value), ROUND))
            else:
                key.append(str(value))
        keys.append(tuple(key))
    return keys


def numeric_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]


def is_label_series(series: pd.Series) -> bool:
    """Text labels only: no missing value, every value a string."""
    values = series.dropna()
    return len(values) == len(series) and all(isinstance(v, str) for v in values)
