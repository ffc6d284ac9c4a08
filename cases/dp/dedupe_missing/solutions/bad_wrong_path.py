import pandas as pd

df = pd.read_csv("data/fruit.csv")
df = df.drop_duplicates().dropna()
df.to_csv("clean.csv", index=False)
print("saved clean.csv")
