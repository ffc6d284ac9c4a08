"""Input tables generated from a declared column schema (``oracles.dp_reference``'s re-runs).

A numpy generator seeded with the schema's ``seed`` draws each table's shape -- which classes
(sometimes names the case never shows), how many rows each, how many defects of each kind --
and a seed that fills in its values. The same params give the same tables on every run.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pytest_autopilot.oracles.dp_reference_params import GeneratedInputs, SchemaColumn

NAME_LETTERS = "abcdefghijklmnopqrstuvwxyz"
# words pandas.read_csv would not keep as text
RESERVED_WORDS = {"nan", "null", "none", "true", "false", "inf", "infinity", "na", "n/a"}


@dataclass(frozen=True)
class Shape:
    """What the generator decides about one table; ``seed`` fills in its values."""

    classes: tuple[str, ...]
    rows_per_class: tuple[int, ...]
    duplicates: int
    missing: int
    out_of_range: int
    seed: int


def class_column(g: GeneratedInputs) -> SchemaColumn | None:
    return next((c for c in g.columns if c.type == "category"), None)


def new_names(rng: np.random.Generator, count: int, min_size: int = 3, max_size: int = 9) -> list[str]:
    """``count`` distinct lowercase names no CSV reader takes for a missing value or a boolean."""
    names: list[str] = []
    while len(names) < count:
        name = "".join(rng.choice(list(NAME_LETTERS), size=int(rng.integers(min_size, max_size + 1))))
        if name not in RESERVED_WORDS and name not in names:
            names.append(name)
    return names


def shapes(g: GeneratedInputs) -> list[Shape]:
    """The ``g.examples`` table shapes of this schema, drawn from ``g.seed``."""
    rng = np.random.default_rng(g.seed)
    low, high = g.rows_per_class
    labels = class_column(g)
    d = g.defects
    out = []
    for _ in range(g.examples):
        if labels is None:
            classes: tuple[str, ...] = ("",)
        else:
            pool = list(labels.categories)
            if g.new_categories and rng.integers(2):
                pool = new_names(rng, int(rng.integers(1, len(pool) + 3)))
            picked = rng.choice(len(pool), size=int(rng.integers(1, len(pool) + 1)), replace=False)
            classes = tuple(pool[i] for i in picked)
        counts = tuple(int(rng.integers(low, high + 1)) for _ in classes)
        out.append(Shape(classes, counts, int(rng.integers(0, d.duplicates + 1)), int(rng.integers(0, d.missing + 1)),
                         int(rng.integers(0, d.out_of_range + 1)), int(rng.integers(0, 2**32))))
    return out


def build_table(g: GeneratedInputs, shape: Shape) -> pd.DataFrame:
    """The table of one shape: valid rows per class, then the defects, in a shuffled order."""
    rng = np.random.default_rng(shape.seed)
    labels = class_column(g)
    n = sum(shape.rows_per_class)
    cells: dict[str, list] = {}
    for column in g.columns:
        if column is labels:
            cells[column.name] = [c for c, k in zip(shape.classes, shape.rows_per_class) for _ in range(k)]
        else:
            cells[column.name] = _values(column, n, rng)
    table = pd.DataFrame(cells, dtype=object)
    numeric = [c for c in g.columns if c.type in ("int", "float")]
    for _ in range(shape.out_of_range if numeric and n else 0):
        column = numeric[rng.integers(len(numeric))]
        table.at[int(rng.integers(n)), column.name] = _outside(column, rng)
    for _ in range(shape.missing if n else 0):
        table.iat[int(rng.integers(n)), int(rng.integers(len(g.columns)))] = None
    if n and shape.duplicates:
        table = pd.concat([table, table.iloc[rng.integers(n, size=shape.duplicates)]], ignore_index=True)
    return table.iloc[rng.permutation(len(table))].reset_index(drop=True)


def _values(column: SchemaColumn, n: int, rng: np.random.Generator) -> list:
    if column.type == "id":
        start, step = int(rng.integers(1, 10_000)), int(rng.integers(1, 4))
        return [start + step * i for i in range(n)]
    if column.type == "category":
        return [column.categories[i] for i in rng.integers(len(column.categories), size=n)]
    low, high = column.range
    if column.type == "int":
        return [int(v) for v in rng.integers(int(low), int(high) + 1, size=n)]
    return [round(float(v), column.decimals) for v in rng.uniform(low, high, size=n)]


def _outside(column: SchemaColumn, rng: np.random.Generator):
    """A value beyond the column's valid range: by at least 1 (so rounding keeps it out), at most half its span."""
    low, high = column.range
    margin = max(1.0, (high - low) / 2 * float(rng.uniform(0.05, 1.0)))
    value = high + margin if rng.integers(2) else low - margin
    return int(round(value)) if column.type == "int" else round(value, column.decimals)


def to_csv(table: pd.DataFrame) -> bytes:
    out = io.StringIO()
    table.to_csv(out, index=False)
    return out.getvalue().encode()


def describe(g: GeneratedInputs, shape: Shape) -> str:
    """The table in words, for a failure detail."""
    parts = [f"{sum(shape.rows_per_class) + shape.duplicates} rows"]
    labels = class_column(g)
    if labels is not None:
        counts = ", ".join(f"{c} ({k})" for c, k in zip(shape.classes, shape.rows_per_class))
        parts.append(f"rows per class of {labels.name} before defects: {counts}")
    if shape.duplicates:
        parts.append(f"{shape.duplicates} exact duplicate rows")
    # a missing value may land on an out-of-range one, hence "up to"
    if shape.missing:
        parts.append(f"up to {shape.missing} missing values")
    if shape.out_of_range:
        parts.append(f"up to {shape.out_of_range} values out of range")
    return ", ".join(parts)
