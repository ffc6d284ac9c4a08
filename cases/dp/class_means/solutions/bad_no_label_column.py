import os

import pandas as pd

df = pd.read_csv("data/fruit.csv")
means = df.groupby("Fruit")[["Red", "Green", "Blue"]].mean()
os.makedirs("out", exist_ok=True)
means.to_csv("out/means.csv", index=False)
print(means)
