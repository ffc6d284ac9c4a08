"""Per-class means with the csv and statistics modules."""
import csv
import os
import statistics

CHANNELS = ["Red", "Green", "Blue"]
values = {}
with open("data/fruit.csv", newline="") as f:
    for row in csv.DictReader(f):
        if not row["Fruit"]:
            continue
        per_class = values.setdefault(row["Fruit"], {c: [] for c in CHANNELS})
        for c in CHANNELS:
            if row[c] != "":
                per_class[c].append(float(row[c]))

os.makedirs("out", exist_ok=True)
with open("out/means.csv", "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["Fruit", *CHANNELS])
    for fruit in sorted(values):
        writer.writerow([fruit, *(repr(statistics.fmean(values[fruit][c])) if values[fruit][c] else "" for c in CHANNELS)])
