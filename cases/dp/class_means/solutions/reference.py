"""Per-class mean of each colour reading (empty cells ignored)."""
from pathlib import Path

import pandas as pd

df = pd.read_csv("data/fruit.csv")
means = df.groupby("Fruit")[["Red", "Green", "Blue"]].mean().reset_index()
Path("out").mkdir(exist_ok=True)
means.to_csv("out/means.csv", index=False)
print(means)
