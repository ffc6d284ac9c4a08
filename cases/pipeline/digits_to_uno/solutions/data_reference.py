# Clean the digits table and split it per digit, 80/20, with a fixed seed.
import os

import numpy as np
import pandas as pd

PIXELS = [f"pixel_{i}" for i in range(64)]

df = pd.read_csv("data/digits.csv")
df = df.drop_duplicates().dropna()
df = df[((df[PIXELS] >= 0) & (df[PIXELS] <= 16)).all(axis=1)]
df = df.astype(int)

rng = np.random.default_rng(7)
test_rows = []
for _, group in df.groupby("label", sort=True):
    n_test = max(1, round(0.2 * len(group)))
    test_rows.extend(rng.choice(group.index.to_numpy(), size=n_test, replace=False))
test = df.loc[sorted(test_rows)]
train = df.drop(index=test.index)

os.makedirs("out", exist_ok=True)
train.to_csv("out/train.csv", index=False)
test.to_csv("out/test.csv", index=False)
print(f"train {len(train)} rows, test {len(test)} rows")
