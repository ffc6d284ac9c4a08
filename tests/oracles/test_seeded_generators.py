"""The DP oracles' generated inputs come from seeded numpy generation, not hypothesis: the
package neither imports nor depends on it, so installing it adds no pytest plugin (issue 24)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from pytest_autopilot.oracles import dp_clean_split

ROOT = Path(__file__).resolve().parents[2]


def test_clean_split_datasets_are_seeded_and_carry_every_defect():
    datasets = dp_clean_split._generated_datasets(40)
    assert datasets == dp_clean_split._generated_datasets(40)  # the same code always meets the same data
    assert len(datasets) == 40
    rows = [row for data in datasets for row in data]
    labels = {row[0] for row in rows if row[0] is not None}
    known = {name for pool in dp_clean_split._CLASS_POOLS for name in pool}
    assert labels & known and labels - known  # known class names and new ones
    readings = [v for row in rows for v in row[1:] if v is not None]
    assert any(isinstance(v, float) and not v.is_integer() for v in readings)  # 2-decimal readings
    assert any(isinstance(v, int) for v in readings)
    assert any(None in row for row in rows) and any(row[0] is None for row in rows)  # missing, the label too
    assert any(v in dp_clean_split._OUT_OF_RANGE for v in readings)
    assert any(len({tuple(r) for r in data}) < len(data) for data in datasets)  # exact duplicates
    assert any(not data for data in datasets)  # and the empty table (the spec's non-zero exit)


def test_the_package_neither_imports_nor_depends_on_hypothesis():
    imports = []
    for path in (ROOT / "pytest_autopilot").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            imports += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] == "hypothesis"]
    assert imports == []
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = [*project["project"]["dependencies"],
              *(d for extra in project["project"]["optional-dependencies"].values() for d in extra)]
    assert not [d for d in wanted if d.lower().startswith("hypothesis")]
    assert "hypothesis" not in project["tool"]["pytest"]["ini_options"]["addopts"]
    scaffold = (ROOT / "pytest_autopilot/data/scaffold/pyproject.toml").read_text()
    assert "hypothesis" not in scaffold
