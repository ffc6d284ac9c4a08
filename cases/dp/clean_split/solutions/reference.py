"""Clean, split (stratified 80/20, seed 42) and min-max scale the fruit colour data."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

LABEL = "Fruit"
CHANNELS = ["Red", "Green", "Blue"]
LOW, HIGH = 0, 255
TEST_FRACTION = 0.2
SEED = 42

df = pd.read_csv("data/fruit.csv")[[LABEL, *CHANNELS]]
df = df.drop_duplicates().dropna()
df = df.astype({c: float for c in CHANNELS})
df = df[((df[CHANNELS] >= LOW) & (df[CHANNELS] <= HIGH)).all(axis=1)]
counts = df[LABEL].value_counts()
df = df[df[LABEL].isin(counts[counts >= 2].index)]
if df.empty:
    print("no class has at least 2 usable rows; nothing to split", file=sys.stderr)
    sys.exit(1)

rng = np.random.default_rng(SEED)
train_parts, test_parts = [], []
for _, group in df.groupby(LABEL, sort=True):
    order = rng.permutation(len(group))
    n_test = max(1, round(TEST_FRACTION * len(group)))
    test_parts.append(group.iloc[order[:n_test]])
    train_parts.append(group.iloc[order[n_test:]])
train = pd.concat(train_parts).copy()
test = pd.concat(test_parts).copy()

low = train[CHANNELS].min()
span = train[CHANNELS].max() - low
span[span == 0] = 1.0
train[CHANNELS] = (train[CHANNELS] - low) / span
test[CHANNELS] = (test[CHANNELS] - low) / span

Path("out").mkdir(exist_ok=True)
train.to_csv("out/train.csv", index=False)
test.to_csv("out/test.csv", index=False)
print(f"train: {len(train)} rows, test: {len(test)} rows")
