"""Known-bad: the reference, but one scaled cell is infinite (what a division by a zero spread
writes). Its values cannot be compared: the candidate fails check finite_values, never a harness
error."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

FEATURES = ["ax_mean", "ay_mean", "az_mean", "ax_std", "ay_std", "az_std"]
LABEL = "gesture"

df = pd.read_csv("data/gestures.csv")
df = df.drop_duplicates().dropna()
df = df[((df[FEATURES] >= -16) & (df[FEATURES] <= 16)).all(axis=1)]
df = df.astype({"sample_id": int})  # read as floats when a sample_id cell was empty
if df.empty:
    print("no usable rows", file=sys.stderr)
    sys.exit(1)
classes = sorted(df[LABEL].unique())
df[LABEL] = df[LABEL].map({name: code for code, name in enumerate(classes)}).astype(int)

rng = np.random.default_rng(7)
train_parts, test_parts = [], []
for _, group in df.groupby(LABEL, sort=True):
    order = rng.permutation(len(group))
    n_test = max(1, round(0.25 * len(group)))
    test_parts.append(group.iloc[order[:n_test]])
    train_parts.append(group.iloc[order[n_test:]])
train, test = pd.concat(train_parts).copy(), pd.concat(test_parts).copy()

median = train[FEATURES].median()
iqr = train[FEATURES].quantile(0.75) - train[FEATURES].quantile(0.25)
iqr[iqr == 0] = 1.0
train[FEATURES] = (train[FEATURES] - median) / iqr
test[FEATURES] = (test[FEATURES] - median) / iqr

train.iloc[0, train.columns.get_loc("ax_mean")] = np.inf

Path("out").mkdir(exist_ok=True)
train.to_csv("out/train.csv", index=False)
test.to_csv("out/test.csv", index=False)
print(f"train: {len(train)} rows, test: {len(test)} rows, classes: {len(classes)}")
