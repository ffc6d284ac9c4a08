"""Write ``cases/dp/assets/gestures.csv``, the gesture case's committed input (run once; not
needed at test time). Deterministic: the same seed gives a byte-identical file.

Rows are accelerometer windows summarised by six features (per-axis mean and standard
deviation, in g) with a gesture label: circle 44, shake 40, swipe 36, tap 32 clean rows
(152, each its own sample_id), drawn from class-conditional normals. Defects on top, for the
cleaning the task asks for: 4 exact duplicates of clean rows, 3 rows with one empty cell,
2 rows with a feature outside the sensor's [-16, 16] g. 161 rows, shuffled.

Usage: ``python tests/data/gesture_case/make_gestures.py``
"""

from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20260314
FEATURES = ["ax_mean", "ay_mean", "az_mean", "ax_std", "ay_std", "az_std"]
CLASSES = {  # rows, feature means, feature spreads
    "circle": (44, [0.1, -0.2, 0.9, 0.8, 0.8, 0.3], [0.15, 0.15, 0.1, 0.15, 0.15, 0.08]),
    "shake": (40, [0.0, 0.1, 1.0, 2.4, 0.6, 0.5], [0.2, 0.2, 0.15, 0.5, 0.2, 0.15]),
    "swipe": (36, [0.5, 0.0, 0.95, 1.1, 0.25, 0.2], [0.2, 0.1, 0.1, 0.3, 0.1, 0.06]),
    "tap": (32, [0.0, 0.0, 1.1, 0.2, 0.2, 1.6], [0.05, 0.05, 0.2, 0.06, 0.06, 0.4]),
}


def main() -> None:
    rng = np.random.default_rng(SEED)
    parts = []
    for name, (n, mean, spread) in CLASSES.items():
        values = rng.normal(mean, spread, size=(n, len(FEATURES)))
        values[:, 3:] = np.abs(values[:, 3:])  # a standard deviation is not negative
        part = pd.DataFrame(values.round(3), columns=FEATURES)
        part["gesture"] = name
        parts.append(part)
    clean = pd.concat(parts, ignore_index=True)
    clean.insert(0, "sample_id", rng.permutation(len(clean)) + 1001)
    extra = clean.sample(5, random_state=SEED).copy()
    extra["sample_id"] = np.arange(5) + 2001
    for i, feature in enumerate(FEATURES[:3]):  # 3 rows with an empty cell
        extra.iloc[i, extra.columns.get_loc(feature)] = np.nan
    extra.iloc[3, extra.columns.get_loc("ax_std")] = 23.5  # 2 rows out of range
    extra.iloc[4, extra.columns.get_loc("az_mean")] = -19.25
    duplicates = clean.sample(4, random_state=SEED + 1)
    table = pd.concat([clean, extra, duplicates], ignore_index=True)
    table = table.iloc[rng.permutation(len(table))]
    out = Path(__file__).parent / "cases/dp/assets/gestures.csv"
    table.to_csv(out, index=False, lineterminator="\n")
    print(f"wrote {out}: {len(table)} rows")


if __name__ == "__main__":
    main()
