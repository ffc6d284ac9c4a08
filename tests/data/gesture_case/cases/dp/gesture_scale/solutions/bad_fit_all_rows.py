"""Robust-scales with the median and IQR of all rows before splitting: test statistics leak
into the scaling. The split itself is right."""

from pathlib import Path

import numpy as np
import pandas as pd

FEATURES = ["ax_mean", "ay_mean", "az_mean", "ax_std", "ay_std", "az_std"]

df = pd.read_csv("data/gestures.csv").drop_duplicates().dropna()
df = df[((df[FEATURES] >= -16) & (df[FEATURES] <= 16)).all(axis=1)]
df = df.astype({"sample_id": int})
classes = sorted(df["gesture"].unique())
df["gesture"] = df["gesture"].map({name: code for code, name in enumerate(classes)}).astype(int)
median = df[FEATURES].median()
iqr = df[FEATURES].quantile(0.75) - df[FEATURES].quantile(0.25)
df[FEATURES] = (df[FEATURES] - median) / iqr.replace(0, 1.0)

rng = np.random.default_rng(7)
test_index = []
for _, group in df.groupby("gesture"):
    test_index.extend(rng.choice(group.index, size=max(1, round(0.25 * len(group))), replace=False))
test = df.loc[test_index]
train = df.drop(index=test_index)

Path("out").mkdir(exist_ok=True)
train.to_csv("out/train.csv", index=False)
test.to_csv("out/test.csv", index=False)
print(f"train: {len(train)} rows, test: {len(test)} rows")
