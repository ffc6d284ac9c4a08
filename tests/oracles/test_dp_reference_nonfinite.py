"""A non-finite value in a candidate's output is the candidate's failure (check
``finite_values``), never a crash of the oracle (issue 22: ``LinAlgError: SVD did not converge``
in the affine comparison, reported as a harness error)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pytest_autopilot.oracles._tabular_compare import column_difference, compare_outputs
from pytest_autopilot.oracles.dp_reference_params import ColumnSpec, DpReferenceParams

WANT = pd.DataFrame({"id": [1, 2, 3, 4], "x": [0.0, 1.0, 2.0, 5.0]})
AFFINE = {"columns": {"x": {"type": "float", "match": "affine"}}}


def _params(**extra) -> DpReferenceParams:
    return DpReferenceParams.model_validate({"reference": "ref.py", "files": [{"path": "out.csv"}], **extra})


def test_an_infinite_cell_fails_finite_values_and_names_the_column():
    got = WANT.assign(x=[0.0, np.inf, 2.0, 5.0])
    checks = compare_outputs({"out.csv": got}, {"out.csv": WANT}, _params(**AFFINE))
    failed = {c.name: c.detail for c in checks if not c.passed}
    assert list(failed) == ["finite_values"]
    assert failed["finite_values"] == "column x of out.csv holds 1 infinite value(s): every number must be finite"


def test_infinities_the_reference_also_writes_are_compared_not_rejected():
    want = WANT.assign(x=[0.0, -np.inf, 2.0, 5.0])
    same = {"out.csv": want.assign(x=[1.0, -np.inf, 5.0, 11.0])}  # 2x + 1 where finite
    assert all(c.passed for c in compare_outputs(same, {"out.csv": want}, _params(**AFFINE)))


def test_the_affine_comparison_never_raises_on_non_finite_values():
    spec, want = ColumnSpec(match="affine"), pd.Series([0.0, 1.0, 2.0, 5.0])
    assert column_difference(pd.Series([0.0, np.inf, 2.0, 5.0]), want, spec) == \
        "has infinite values in other rows than expected"
    huge = pd.Series([0.0, 1e308, -1e308, 1e308])  # finite, but no least-squares fit exists
    assert "not one linear rescaling" in column_difference(huge, want, spec)
