import os

import pandas as pd

df = pd.read_csv("data/fruit.csv")
rows = []
for fruit in ["apple", "banana", "orange"]:
    part = df[df["Fruit"] == fruit]
    rows.append({"Fruit": fruit, "Red": part["Red"].mean(), "Green": part["Green"].mean(), "Blue": part["Blue"].mean()})
os.makedirs("out", exist_ok=True)
pd.DataFrame(rows).to_csv("out/means.csv", index=False)
