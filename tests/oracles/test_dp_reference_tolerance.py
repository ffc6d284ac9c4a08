"""dp_reference's default column tolerances: a correct program may round its output to 4 decimals
(issue 23: such a program was rejected by the old default atol of 1e-9), while a value off by more
than rounding can explain is still rejected."""

from __future__ import annotations

import pandas as pd

from pytest_autopilot.oracles._tabular_compare import compare_outputs
from pytest_autopilot.oracles.dp_reference_params import ColumnSpec, DpReferenceParams

REF = pd.DataFrame({"label": ["a", "b", "c"], "mean": [123.456789123, 0.123456789, 87.654321987]})


def _params(**extra) -> DpReferenceParams:
    return DpReferenceParams.model_validate({"reference": "ref.py", "files": [{"path": "out.csv"}], **extra})


def _failed(got: pd.DataFrame, params: DpReferenceParams) -> dict[str, str]:
    return {c.name: c.detail for c in compare_outputs({"out.csv": got}, {"out.csv": REF}, params) if not c.passed}


def test_output_rounded_to_4_decimals_passes_the_defaults():
    assert not _failed(REF.round(4), _params())


def test_output_rounded_to_2_decimals_or_off_by_a_thousandth_fails_the_defaults():
    assert "values" in _failed(REF.round(2), _params())
    assert "values" in _failed(REF.assign(mean=REF["mean"] + 1e-3), _params())


def test_a_case_may_still_ask_for_full_precision():
    strict = _params(columns={"mean": {"atol": 1e-9}})
    assert "values" in _failed(REF.round(4), strict)
    assert not _failed(REF.copy(), strict)


def test_the_default_tolerances_are_documented_values():
    spec = ColumnSpec()
    assert (spec.atol, spec.rtol) == (1e-4, 1e-6)
