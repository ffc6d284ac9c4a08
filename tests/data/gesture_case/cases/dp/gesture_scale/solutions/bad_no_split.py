"""Cleans, encodes and scales correctly, but never splits: every row goes to both files."""

from pathlib import Path

import pandas as pd

FEATURES = ["ax_mean", "ay_mean", "az_mean", "ax_std", "ay_std", "az_std"]

df = pd.read_csv("data/gestures.csv").drop_duplicates().dropna()
df = df[((df[FEATURES] >= -16) & (df[FEATURES] <= 16)).all(axis=1)]
df = df.astype({"sample_id": int})
classes = sorted(df["gesture"].unique())
df["gesture"] = df["gesture"].map({name: code for code, name in enumerate(classes)}).astype(int)
median = df[FEATURES].median()
iqr = df[FEATURES].quantile(0.75) - df[FEATURES].quantile(0.25)
df[FEATURES] = (df[FEATURES] - median) / iqr.replace(0, 1.0)

Path("out").mkdir(exist_ok=True)
df.to_csv("out/train.csv", index=False)
df.to_csv("out/test.csv", index=False)
print(f"train and test: {len(df)} rows")
