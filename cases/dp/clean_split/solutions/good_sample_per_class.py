"""The same cleaning, with pandas' own sampling for the split (another random choice of test rows),
filters written as boolean masks in another order, and both files sorted by class."""

import os
import sys

import pandas as pd

df = pd.read_csv("data/fruit.csv")
df = df.dropna()
df = df.drop_duplicates()
channels = ["Red", "Green", "Blue"]
df = df[df[channels].ge(0).all(axis=1) & df[channels].le(255).all(axis=1)]
sizes = df.groupby("Fruit")["Fruit"].transform("size")
df = df[sizes >= 2]
if len(df) == 0:
    print("error: no rows left after cleaning", file=sys.stderr)
    sys.exit(2)

test_parts = []
for fruit, rows in df.groupby("Fruit"):
    n_test = max(1, round(0.2 * len(rows)))
    test_parts.append(rows.sample(n=n_test, random_state=42))
test = pd.concat(test_parts)
train = df.drop(index=test.index)

lo = train[channels].min()
span = (train[channels].max() - lo).replace(0, 1)
train = train.assign(**{c: (train[c] - lo[c]) / span[c] for c in channels})
test = test.assign(**{c: (test[c] - lo[c]) / span[c] for c in channels})

os.makedirs("out", exist_ok=True)
train.sort_values("Fruit").to_csv("out/train.csv", index=False)
test.sort_values("Fruit").to_csv("out/test.csv", index=False)
