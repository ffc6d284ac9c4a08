# Drops duplicates and empty cells but keeps the readings outside 0..255.
import os

import numpy as np
import pandas as pd

df = pd.read_csv("data/fruit.csv").drop_duplicates().dropna()
df[["Red", "Green", "Blue"]] = df[["Red", "Green", "Blue"]].astype(int)

rng = np.random.default_rng(42)
test_rows = []
for _, group in df.groupby("Fruit", sort=True):
    test_rows.extend(rng.choice(group.index.to_numpy(), size=max(1, round(0.2 * len(group))), replace=False))
test = df.loc[sorted(test_rows)]
train = df.drop(index=test.index)

os.makedirs("out", exist_ok=True)
train.to_csv("out/train.csv", index=False)
test.to_csv("out/test.csv", index=False)
