"""Generate the project's own fruit colour dataset: ``cases/dp/assets/fruit_colours.csv``.

The DP cases need a small, realistic, *known* dataset in the shape of the paper's fruit
colour data (columns ``Fruit,Red,Green,Blue``; apple 71 / banana 94 / orange 91 rows) but
generated here from class-conditional distributions, so the project owns it and its
defects are documented. Deterministic: same seed -> byte-identical file.

Model of a reading
    An RGB colour sensor (e.g. the APDS9960 on the Arduino Nano 33 BLE Sense) scaled to
    8-bit counts, so every channel is an integer in **[0, 255]** (the valid range).
    Per row: a brightness ``L ~ Normal(mu_L, sd_L)`` of the class and a chromaticity
    ``(r, g, b) ~ Normal(class means, 0.025)`` renormalised to sum 1; the channel is
    ``round(3 * L * share)`` clipped to [0, 255] (a saturated sensor reads 255).
    Class means (r, g, b): apple (0.56, 0.24, 0.20), banana (0.42, 0.38, 0.20),
    orange (0.60, 0.28, 0.12); brightness mu_L: apple 105, banana 145, orange 118.

Deliberate defects (what a correct cleaning step must handle), with the default seed:
    * 250 distinct base rows: apple 69, banana 92, orange 89 (re-drawn on collision, so
      the base rows are pairwise distinct).
    * 6 exact duplicate rows (2 per class) copied from complete, in-range base rows, so
      the file has 256 rows: apple 71, banana 94, orange 91 -- the paper's class counts.
    * 4 missing values: one channel left empty in 4 distinct base rows (the label is
      never missing). A duplicate never copies such a row.
    * 2 out-of-range outliers in 2 other base rows: one channel set to 287 (a 10-bit
      reading that escaped scaling) and one set to -4 (a dark-offset calibration glitch).
    Clean unique rows (no duplicate, no missing value, all channels in [0, 255]):
    250 - 4 - 2 = 244. The rows are shuffled; the file has a header, ``\\n`` line ends,
    integers without a decimal point and empty fields for missing values.

Seed choice: the default seed 20260108 was picked (among 20260101..20260120, all of which
satisfy the counts above) so that with the clean_split reference's split (numpy seed 42)
some channel's extreme value lands in the test split only; scaling with the whole data's
min/max instead of the training rows' is then visible on this very file.

Usage: ``python scripts/make_fruit_data.py [--seed 20260108] [--out PATH]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

DEFAULT_SEED = 20260108
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "cases" / "dp" / "assets" / "fruit_colours.csv"

CLASSES = {  # name: (base rows, chromaticity means (r, g, b), brightness mean, brightness sd)
    "apple": (69, (0.56, 0.24, 0.20), 105.0, 14.0),
    "banana": (92, (0.42, 0.38, 0.20), 145.0, 16.0),
    "orange": (89, (0.60, 0.28, 0.12), 118.0, 12.0),
}
CHROMA_SD = 0.025
DUPLICATES_PER_CLASS = 2
N_MISSING = 4
OUTLIER_VALUES = (287, -4)
CHANNELS = ("Red", "Green", "Blue")


def _reading(rng: np.random.Generator, chroma, mu_l: float, sd_l: float) -> tuple[int, int, int]:
    share = np.clip(rng.normal(chroma, CHROMA_SD), 0.01, None)
    share = share / share.sum()
    level = max(rng.normal(mu_l, sd_l), 5.0)
    values = np.clip(np.rint(3.0 * level * share), 0, 255).astype(int)
    return int(values[0]), int(values[1]), int(values[2])


def generate(seed: int = DEFAULT_SEED) -> str:
    """The CSV text for ``seed``."""
    rng = np.random.default_rng(seed)
    rows: list[list] = []  # [fruit, red, green, blue]; None marks a missing value
    seen: set[tuple] = set()
    for fruit, (count, chroma, mu_l, sd_l) in CLASSES.items():
        made = 0
        while made < count:
            row = (fruit, *_reading(rng, chroma, mu_l, sd_l))
            if row in seen:  # keep base rows distinct, so the defects below are exactly as documented
                continue
            seen.add(row)
            rows.append(list(row))
            made += 1

    # Defects go to distinct base rows: first the missing values, then the outliers.
    picked = rng.choice(len(rows), size=N_MISSING + len(OUTLIER_VALUES), replace=False)
    for index in picked[:N_MISSING]:
        rows[index][1 + int(rng.integers(3))] = None
    for index, value in zip(picked[N_MISSING:], OUTLIER_VALUES):
        rows[index][1 + int(rng.integers(3))] = value
    damaged = {int(i) for i in picked}

    for fruit in CLASSES:  # exact duplicates of complete, in-range rows
        candidates = [i for i, row in enumerate(rows) if row[0] == fruit and i not in damaged]
        for index in rng.choice(candidates, size=DUPLICATES_PER_CLASS, replace=False):
            rows.append(list(rows[int(index)]))

    order = rng.permutation(len(rows))
    lines = ["Fruit," + ",".join(CHANNELS)]
    for index in order:
        fruit, *values = rows[int(index)]
        lines.append(",".join([fruit, *("" if v is None else str(v) for v in values)]))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(generate(args.seed).encode("ascii"))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
