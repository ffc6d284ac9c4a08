import os

import pandas as pd

data = pd.read_csv("data/fruit.csv")
result = data.groupby("Fruit", as_index=False).agg({"Red": "mean", "Green": "mean", "Blue": "mean"})
result = result.round(4).sort_values("Fruit", ascending=False)
os.makedirs("out", exist_ok=True)
result.to_csv("out/means.csv", index=False)
