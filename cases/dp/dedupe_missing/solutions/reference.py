"""Drop exact duplicate rows and rows with an empty cell from the fruit table."""
from pathlib import Path

import pandas as pd

df = pd.read_csv("data/fruit.csv")
df = df.drop_duplicates().dropna()
Path("out").mkdir(exist_ok=True)
df.to_csv("out/clean.csv", index=False)
print(f"{len(df)} rows kept")
