# Clean the fruit readings and split them per class, 80/20, with a fixed seed.
import os

import numpy as np
import pandas as pd

CHANNELS = ["Red", "Green", "Blue"]

df = pd.read_csv("data/fruit.csv")
df = df.drop_duplicates().dropna()
df = df[((df[CHANNELS] >= 0) & (df[CHANNELS] <= 255)).all(axis=1)]
df[CHANNELS] = df[CHANNELS].astype(int)

rng = np.random.default_rng(42)
test_rows = []
for _, group in df.groupby("Fruit", sort=True):
    n_test = max(1, round(0.2 * len(group)))
    test_rows.extend(rng.choice(group.index.to_numpy(), size=n_test, replace=False))
test = df.loc[sorted(test_rows)]
train = df.drop(index=test.index)

os.makedirs("out", exist_ok=True)
train.to_csv("out/train.csv", index=False)
test.to_csv("out/test.csv", index=False)
print(f"train {len(train)} rows, test {len(test)} rows")
