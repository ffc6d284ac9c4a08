import csv
import os
from collections import defaultdict

values = defaultdict(list)
with open("data/readings.csv", newline="") as f:
    for row in csv.DictReader(f):
        if row["value"].strip():
            values[row["sensor"]].append(float(row["value"]))
os.makedirs("out", exist_ok=True)
with open("out/means.csv", "w") as f:
    f.write("sensor,mean\n")
    for sensor in sorted(values):
        f.write(f"{sensor},{sum(values[sensor]) / len(values[sensor]):.2f}\n")
