import os

import pandas as pd

df = pd.read_csv("data/fruit.csv")
df = df[df["Fruit"].isin(["apple", "banana", "orange"])]
df = df.drop_duplicates().dropna()
os.makedirs("out", exist_ok=True)
df.to_csv("out/clean.csv", index=False)
