"""Clean, min-max scale, then split -- scales with the WHOLE data's min/max (test rows leak
into the scaling), the classic preprocessing leak."""

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

low = df[CHANNELS].min()
span = df[CHANNELS].max() - low
span[span == 0] = 1.0
df[CHANNELS] = (df[CHANNELS] - low) / span

rng = np.random.default_rng(42)
train_parts, test_parts = [], []
for _, group in df.groupby(LABEL, sort=True):
    order = rng.permutation(len(group))
    n_test = max(1, round(0.2 * len(group)))
    test_parts.append(group.iloc[order[:n_test]])
    train_parts.append(group.iloc[order[n_test:]])

Path("out").mkdir(exist_ok=True)
pd.concat(train_parts).to_csv("out/train.csv", index=False)
pd.concat(test_parts).to_csv("out/test.csv", index=False)
print("done")
