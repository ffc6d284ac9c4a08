"""Clean and split the fruit data."""

import numpy as np
import pandas as pd

CHANNELS = ["Red", "Green", "Blue"]

df = pd.read_csv("data/fruit.csv").drop_duplicates().dropna()
df = df[((df[CHANNELS] >= 0) & (df[CHANNELS] <= 255)).all(axis=1)]
rng = np.random.default_rng(42)
test = df.groupby("Fruit", group_keys=False).sample(frac=0.2, random_state=42)
train = df.drop(test.index)
low, span = train[CHANNELS].min(), train[CHANNELS].max() - train[CHANNELS].min()
train[CHANNELS] = (train[CHANNELS] - low) / span
test[CHANNELS] = (test[CHANNELS] - low) / span
print(train.head())
print(test.head())
print("Success: data cleaned, scaled and split.")
