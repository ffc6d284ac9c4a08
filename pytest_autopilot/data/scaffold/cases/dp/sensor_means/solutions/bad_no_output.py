import csv
from collections import defaultdict

values = defaultdict(list)
with open("data/readings.csv", newline="") as f:
    for row in csv.DictReader(f):
        if row["value"].strip():
            values[row["sensor"]].append(float(row["value"]))
for sensor in sorted(values):
    print(f"{sensor},{sum(values[sensor]) / len(values[sensor]):.2f}")
