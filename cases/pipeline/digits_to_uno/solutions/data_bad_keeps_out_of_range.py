# Drops duplicates and empty cells but keeps the rows with a pixel outside 0..16.
import os

import numpy as np
import pandas as pd

df = pd.read_csv("data/digits.csv").drop_duplicates().dropna().astype(int)

rng = np.random.default_rng(7)
test_rows = []
for _, group in df.groupby("label", sort=True):
    test_rows.extend(rng.choice(group.index.to_numpy(), size=max(1, round(0.2 * len(group))), replace=False))
test = df.loc[sorted(test_rows)]
train = df.drop(index=test.index)

os.makedirs("out", exist_ok=True)
train.to_csv("out/train.csv", index=False)
test.to_csv("out/test.csv", index=False)
