"""Clean, split, scale, then 'shuffle the training set' -- but only the label column is
shuffled, so labels no longer belong to their readings. Prints success anyway."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

LABEL, CHANNELS = "Fruit", ["Red", "Green", "Blue"]

df = pd.read_csv("data/fruit.csv")[[LABEL, *CHANNELS]].drop_duplicates().dropna()
df = df.astype({c: float for c in CHANNELS})
df = df[((df[CHANNELS] >= 0) & (df[CHANNELS] <= 255)).all(axis=1)]
counts = df[LABEL].value_counts()
df = df[df[LABEL].isin(counts[counts >= 2].index)]
if df.empty:
    sys.exit("no usable rows")

rng = np.random.default_rng(42)
train_parts, test_parts = [], []
for _, group in df.groupby(LABEL, sort=True):
    order = rng.permutation(len(group))
    n_test = max(1, round(0.2 * len(group)))
    test_parts.append(group.iloc[order[:n_test]])
    train_parts.append(group.iloc[order[n_test:]])
train, test = pd.concat(train_parts).copy(), pd.concat(test_parts).copy()
low = train[CHANNELS].min()
span = (train[CHANNELS].max() - low).replace(0, 1.0)
train[CHANNELS] = (train[CHANNELS] - low) / span
test[CHANNELS] = (test[CHANNELS] - low) / span
train[LABEL] = rng.permutation(train[LABEL].to_numpy())  # "shuffle" the training data

Path("out").mkdir(exist_ok=True)
train.to_csv("out/train.csv", index=False)
test.to_csv("out/test.csv", index=False)
print("success: wrote out/train.csv and out/test.csv")
