from pathlib import Path

import pandas as pd

df = pd.read_csv("data/fruit.csv")
df = df.dropna()
Path("out").mkdir(exist_ok=True)
df.to_csv("out/clean.csv", index=False)
print("done")
