"""``dp_reference`` without a column spec (issue 24): columns not listed are compared by type, so a
typical task needs only its files, keys and split."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from pytest_autopilot.oracles._tabular_compare import compare_outputs
from pytest_autopilot.oracles._tabular_defaults import FLOAT_DEFAULT, column_specs
from pytest_autopilot.oracles.dp_reference_params import ColumnSpec, DpReferenceParams

PROJECT = Path(__file__).resolve().parents[1] / "data" / "gesture_case"
SPLIT = {"files": [{"path": "train.csv", "role": "train", "row_slack": 2}, {"path": "test.csv", "role": "test", "row_slack": 2}],
         "rows": {"key": ["id"]}, "split": {"label": "y"}}


def _params(**extra) -> DpReferenceParams:
    return DpReferenceParams.model_validate({"reference": "ref.py", **SPLIT, **extra})


def _split(raw: pd.DataFrame, test_ids: set[int], scale_on: str = "train", ddof: int = 1) -> dict[str, pd.DataFrame]:
    """A stratified-looking split of ``raw`` with its features standardised and min-max scaled on ``scale_on`` rows."""
    train_rows, test_rows = raw[~raw.id.isin(test_ids)], raw[raw.id.isin(test_ids)]
    fit = train_rows if scale_on == "train" else raw
    out = {}
    for path, rows in (("train.csv", train_rows), ("test.csv", test_rows)):
        out[path] = rows.assign(z=(rows.a - fit.a.mean()) / fit.a.std(ddof=ddof),
                                m=(rows.b - fit.b.min()) / (fit.b.max() - fit.b.min()))
    return out


def _raw(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({"id": np.arange(n), "y": np.arange(n) % 2, "a": rng.normal(5, 2, n), "b": rng.uniform(0, 9, n),
                         "raw": rng.uniform(-3, 3, n).round(3), "name": [f"s{i}" for i in range(n)]})


def test_undeclared_columns_get_a_spec_by_their_type():
    want = _split(_raw(), set(range(0, 40, 5)))
    specs = column_specs(want, _params(columns={"name": {"type": "str"}}))
    assert specs["z"] == ColumnSpec(type="float", match="affine", stats=["mean", "std"], atol=1e-3, rtol=1e-3)
    assert specs["m"].match == "affine" and specs["m"].stats == ["min", "max"]
    assert specs["raw"] == FLOAT_DEFAULT  # a float the reference did not scale: within 1e-4 (4 decimals)
    assert specs["a"] == FLOAT_DEFAULT and specs["id"] == ColumnSpec() and specs["y"] == ColumnSpec()
    assert specs["name"] == ColumnSpec(type="str")  # declared: as declared
    same_rows = column_specs(want, _params(split={"label": "y", "same_rows": True}))
    assert same_rows["z"] == FLOAT_DEFAULT  # the rows are the reference's: the values must be too


def test_a_free_split_passes_with_other_rows_and_a_leaky_scaler_fails():
    raw = _raw()
    want = _split(raw, set(range(0, 40, 5)))
    p = _params()
    other_rows = _split(raw, set(range(1, 40, 5)))  # another split, each side scaled on its own training rows
    assert [c.name for c in compare_outputs(other_rows, want, p) if not c.passed] == []
    printed = {k: f.round(6) for k, f in other_rows.items()}  # six decimals, as a program may print them
    assert [c.name for c in compare_outputs(printed, want, p) if not c.passed] == []
    leaky = _split(raw, set(range(1, 40, 5)), scale_on="all")
    failed = {c.name: c.detail for c in compare_outputs(leaky, want, p) if not c.passed}
    assert list(failed) == ["statistics"]
    assert re.search(r"the (mean|std) of column z in train.csv differs", failed["statistics"])
    # (m may pass: a min-max fit on all rows equals the training fit when the extremes are training rows)
    unscaled = {k: f.assign(z=f.a) for k, f in other_rows.items()}  # a rescaling, but not fit at all
    assert "statistics" in {c.name for c in compare_outputs(unscaled, want, p) if not c.passed}


def test_standardised_by_either_ddof_on_a_small_one_class_table():
    """A newcomer's correct program was rejected: on a small generated table (one class, 17 rows)
    the reference's std with numpy's ddof 0 reads 1.04 under pandas' ddof 1, so the column was not
    seen as scaled and its values were compared exactly against another split's."""
    raw = _raw(17).assign(y=0)
    want = _split(raw, {0, 5, 10, 15, 16}, ddof=0)
    p = _params()
    assert column_specs(want, p)["z"].stats == ["mean", "std"]
    for ddof in (0, 1):  # another split, standardised by either convention
        other = _split(raw, {1, 6, 11, 12, 14}, ddof=ddof)
        assert [c.detail for c in compare_outputs(other, want, p) if not c.passed] == [], ddof
    leaky = _split(raw, {1, 6, 11, 12, 14}, scale_on="all", ddof=0)
    assert "statistics" in {c.name for c in compare_outputs(leaky, want, p) if not c.passed}


def test_the_gesture_case_without_a_column_spec_passes_the_self_test(pytester):
    """The shipped example with its whole ``columns:`` block deleted: the reference is accepted and
    every known-bad solution is rejected by the check it declares."""
    for folder in ("cases", "prompts"):
        shutil.copytree(PROJECT / folder, pytester.path / folder)
    case = pytester.path / "cases/dp/gesture_scale.yaml"
    text = case.read_text()
    trimmed = re.sub(r"\n        columns:\n(          .*\n)+", "\n", text)
    assert "ax_mean: &scaled" in text and "columns:\n          sample_id" not in trimmed
    case.write_text(trimmed)
    pytester.makeini("[pytest]\nautopilot_cases_dir = cases\n")
    result = pytester.runpytest("cases", "--autopilot-self-test", "-p", "no:xdist", "-v")
    result.assert_outcomes(passed=6)
    out = result.stdout.str()
    for check in ("split_disjoint", "statistics", "column_types", "generated_inputs"):
        assert f"PASSED (rejected by dp_reference.{check})" in out, out[-3000:]
