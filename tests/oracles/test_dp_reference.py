"""The ``dp_reference`` oracle: its comparison and split-invariant functions on small tables, the
schema generator, the parameter model, and the gesture case (tests/data/gesture_case: a task of
another shape than clean_split, written as YAML + prompt only) judged in the real sandbox and
through the plugin's self-test. No check detail may quote the reference's output.

Run: ``.venv/bin/python -m pytest tests/oracles/test_dp_reference.py -q -p no:cacheprovider``
"""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import pandas as pd
import pytest

from pytest_autopilot.cases.spec import load_case
from pytest_autopilot.core.errors import HarnessError
from pytest_autopilot.executors.local import PythonExecutor
from pytest_autopilot.executors.sandbox import Limits, Sandbox
from pytest_autopilot.oracles import OracleContext
from pytest_autopilot.oracles._tabular_compare import (
    column_difference,
    compare_outputs,
    declaration_problems,
    split_checks,
)
from pytest_autopilot.oracles._tabular_schema import Shape, build_table, describe, shapes
from pytest_autopilot.oracles.dp_reference_params import ColumnSpec, DpReferenceParams, GeneratedInputs

PROJECT = Path(__file__).resolve().parents[1] / "data" / "gesture_case"
CASE_FILE = PROJECT / "cases/dp/gesture_scale.yaml"
BAD = {"bad_no_split": "split_disjoint", "bad_fit_all_rows": "statistics", "bad_class_names": "column_types",
       "bad_hardcoded": "generated_inputs", "bad_infinite": "finite_values"}


def _oracle_module():
    return importlib.import_module("pytest_autopilot.oracles.dp_reference")


def _params(**extra) -> DpReferenceParams:
    return DpReferenceParams.model_validate({"reference": "ref.py", "files": [{"path": "out.csv"}], **extra})


def _failed(checks) -> dict[str, str]:
    return {c.name: c.detail for c in checks if not c.passed}


# ---- comparison on small tables

REF = pd.DataFrame({"id": [1, 2, 3], "x": [0.5, 1.5, 2.5], "label": ["a", "b", "a"]})


def test_equal_tables_pass_every_check():
    checks = compare_outputs({"out.csv": REF.copy()}, {"out.csv": REF}, _params())
    assert [c.name for c in checks] == ["columns", "column_types", "finite_values", "row_count", "rows_match", "values"]
    assert all(c.passed for c in checks)


def test_values_within_tolerance_pass_and_beyond_it_name_rows_and_size_only():
    close = REF.assign(x=REF.x + 1e-4)
    assert not _failed(compare_outputs({"out.csv": close}, {"out.csv": REF}, _params(columns={"x": {"atol": 1e-3}})))
    far = REF.assign(x=REF.x + [0, 0, 2.1])
    detail = _failed(compare_outputs({"out.csv": far}, {"out.csv": REF}, _params()))["values"]
    assert detail == "column x of out.csv differs from the expected values in 1/3 rows, max abs diff 2.1"


def test_row_pairing_by_key_sorted_in_order_or_any_order():
    shuffled = REF.iloc[[2, 0, 1]]
    for rows in ({"key": ["id"]}, {"sort_by": ["id"]}, {}):
        assert not _failed(compare_outputs({"out.csv": shuffled}, {"out.csv": REF}, _params(rows=rows))), rows
    assert "values" in _failed(compare_outputs({"out.csv": shuffled}, {"out.csv": REF}, _params(rows={"ordered": True})))
    other = REF.assign(id=[1, 2, 9])
    detail = _failed(compare_outputs({"out.csv": other}, {"out.csv": REF}, _params(rows={"key": ["id"]})))["rows_match"]
    assert detail == "out.csv: 1 of the 3 expected rows are missing, 1 rows are not expected (e.g. id=9)"


def test_column_order_and_types():
    reordered = REF[["x", "id", "label"]]
    assert "columns" in _failed(compare_outputs({"out.csv": reordered}, {"out.csv": REF}, _params()))
    assert not _failed(compare_outputs({"out.csv": reordered}, {"out.csv": REF}, _params(column_order=False)))
    named = REF.assign(id=["p", "q", "r"])
    detail = _failed(compare_outputs({"out.csv": named}, {"out.csv": REF}, _params()))["column_types"]
    assert detail == "column id of out.csv holds text, expected integers"
    assert not _failed(compare_outputs({"out.csv": REF.assign(x=[1, 2, 3])}, {"out.csv": REF.assign(x=[1.0, 2, 3])},
                                       _params(columns={"x": {"type": "float"}})))  # integers are numbers


def test_declarations_that_do_not_fit_the_references_output_are_named():
    p = _params(columns={"xx": {}, "x": {"type": "int"}}, rows={"key": ["id"]})
    assert declaration_problems({"out.csv": REF}, p) == [
        "column xx is not in the reference's output", "column x of the reference's out.csv holds numbers, declared type int"]


def test_affine_columns_allow_one_increasing_rescaling():
    want, spec = pd.Series([0.0, 1.0, 3.0]), ColumnSpec(match="affine")
    assert column_difference(2 * want + 1, want, spec) is None
    assert "other way" in column_difference(-want, want, spec)
    assert "not one linear rescaling" in column_difference(pd.Series([0.0, 1.0, 7.0]), want, spec)
    assert "differs from the expected values in 3/3 rows" in column_difference(2 * want + 1, want, ColumnSpec())


SPLIT = {"files": [{"path": "train.csv", "role": "train"}, {"path": "test.csv", "role": "test"}],
         "split": {"label": "y"}, "rows": {"key": ["id"]}}


def _split_frames(test_counts: dict[int, int], total: dict[int, int]) -> dict[str, pd.DataFrame]:
    """Rows 0, 1, ... labelled class by class; the first ``test_counts[c]`` of class c are the test part."""
    labels = [c for c, n in total.items() for _ in range(n)]
    frame = pd.DataFrame({"id": range(len(labels)), "y": labels})
    test = pd.concat([frame[frame.y == c].head(k) for c, k in test_counts.items()])
    return {"train.csv": frame.drop(test.index), "test.csv": test}


def test_split_is_disjoint_and_stratified_within_one_row_per_class():
    p = _params(**SPLIT)
    want = _split_frames({1: 10, 2: 16}, {1: 40, 2: 64})
    assert all(c.passed for c in split_checks(_split_frames({1: 11, 2: 15}, {1: 40, 2: 64}), want, p))
    detail = _failed(split_checks(_split_frames({1: 10, 2: 9}, {1: 40, 2: 64}), want, p))["split_stratified"]
    assert detail == "test split is not stratified: class 2 has 9 rows, expected 16±1"
    both = {"train.csv": want["train.csv"], "test.csv": pd.concat([want["test.csv"], want["train.csv"].head(3)])}
    assert _failed(split_checks(both, want, p))["split_disjoint"] == (
        "3 keys are in both train.csv and test.csv (e.g. id=10)")


def test_statistics_are_compared_in_the_training_file_of_a_free_split():
    want = _split_frames({1: 2}, {1: 8})
    want["train.csv"] = want["train.csv"].assign(v=[-1.0, -0.5, 0.0, 0.5, 1.0, 2.0])
    want["test.csv"] = want["test.csv"].assign(v=[0.2, 3.0])
    p = _params(**SPLIT, columns={"v": {"match": "affine", "stats": ["median", "iqr"]}})
    assert not _failed(compare_outputs({k: f.copy() for k, f in want.items()}, want, p))
    shifted = {k: f.assign(v=f.v + 0.25) for k, f in want.items()}  # one affine map: values pass, statistics fail
    failed = _failed(compare_outputs(shifted, want, p))
    assert list(failed) == ["statistics"]
    assert failed["statistics"] == "the median of column v in train.csv differs from the expected by 0.25"


# ---- generated inputs

SCHEMA = GeneratedInputs.model_validate({
    "path": "data/in.csv", "rows_per_class": [3, 6], "defects": {"duplicates": 2, "missing": 2, "out_of_range": 2},
    "columns": [{"name": "id", "type": "id"}, {"name": "v", "type": "float", "range": [-1, 1], "decimals": 2},
                {"name": "n", "type": "int", "range": [0, 9]}, {"name": "c", "type": "category", "categories": ["a", "b"]}]})


def test_generated_tables_follow_the_schema_and_carry_the_defects():
    shape = Shape(("a", "zed"), (4, 5), duplicates=2, missing=1, out_of_range=2, seed=3)
    table = build_table(SCHEMA, shape)
    assert build_table(SCHEMA, shape).equals(table)  # the seed fixes the values
    assert list(table.columns) == ["id", "v", "n", "c"] and len(table) == 11
    assert int(table.duplicated().sum()) >= 1 and int(table.isna().sum().sum()) >= 1
    numbers = table[["v", "n"]].apply(pd.to_numeric)
    assert ((numbers.v.abs() > 1) | (numbers.n < 0) | (numbers.n > 9)).sum() >= 1
    assert describe(SCHEMA, shape).startswith("11 rows, rows per class of c before defects: a (4), zed (5)")


def test_the_shapes_are_seeded_and_draw_new_class_names():
    schema = SCHEMA.model_copy(update={"examples": 30, "seed": 5})
    first = shapes(schema)
    assert first == shapes(schema) and len(first) == 30
    assert shapes(schema.model_copy(update={"seed": 6})) != first
    assert any(set(s.classes) - {"a", "b"} for s in first) and any(set(s.classes) <= {"a", "b"} for s in first)
    low, high = schema.rows_per_class
    assert all(low <= k <= high for s in first for k in s.rows_per_class)
    assert {s.duplicates for s in first} == set(range(schema.defects.duplicates + 1))


# ---- the parameter model


def test_params_reject_unknown_keys_and_inconsistent_settings():
    mod = _oracle_module()
    with pytest.raises(HarnessError, match=r"field files\.0\.rol: unknown field"):
        mod.parse_params({"reference": "r.py", "files": [{"path": "a.csv", "rol": "train"}]})
    for bad in ({"rows": {"key": ["id"], "ordered": True}}, {"files": [{"path": "a.csv", "role": "train"}]},
                {"split": {"label": "y"}}):
        with pytest.raises(HarnessError):
            mod.parse_params({"reference": "r.py", "files": [{"path": "a.csv"}], **bad})


def test_the_param_model_imports_without_pandas():
    code = ("import sys; import pytest_autopilot.oracles.dp_reference_params; "
            "print(sorted(m for m in ('pandas', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---- the gesture case in the real sandbox


@lru_cache(maxsize=None)
def _sandbox() -> Sandbox:
    return Sandbox()


@contextmanager
def _run(executor, limits, code, files, prefix="rerun-"):
    workdir = executor.sandbox.new_workdir(prefix=prefix)
    try:
        yield executor.execute(code, workdir, files, limits), workdir
    finally:
        executor.sandbox.cleanup(workdir)


@lru_cache(maxsize=None)
def _verdict(stem: str):
    """The oracle's verdict on one stored solution, run as the loop runs it; and the reference's files."""
    case = load_case(CASE_FILE, PROJECT / "prompts")
    executor = PythonExecutor(_sandbox())
    limits = Limits().replace(timeout_s=case.spec.timeouts.run_s, cpu_s=case.spec.limits.cpu_s,
                              memory_mb=case.spec.limits.memory_mb)
    files = {dest: case.asset(name) for dest, name in case.spec.workspace.items()}
    code = case.solution_path(f"gesture_scale/solutions/{stem}.py").read_text()
    with _run(executor, limits, code, files, "dp-ref-test-") as (execution, workdir):
        ctx = OracleContext(workdir=workdir, execution=execution, answer=code, params=dict(case.step("code").oracle.params),
                            case_dir=case.dir, assets={n: case.asset(n) for n in case.spec.assets},
                            workspace=dict(case.spec.workspace), inputs=dict(files),
                            run=lambda c, f, prefix="rerun-": _run(executor, limits, c, f, prefix))
        verdict = _oracle_module().dp_reference(ctx)
        outputs = {rel: pd.read_csv(workdir / rel) for rel in ("out/train.csv", "out/test.csv")
                   if (workdir / rel).is_file()}
    return verdict, outputs


def _explain(verdict) -> str:
    return "\n".join(f"{'ok ' if c.passed else 'BAD'} {c.name}: {c.detail[:300]}" for c in verdict.checks)


def test_the_gesture_reference_is_accepted():
    verdict, _ = _verdict("reference")
    assert verdict.passed, _explain(verdict)
    assert {"split_stratified", "statistics", "deterministic", "generated_inputs"} <= {c.name for c in verdict.checks}


@pytest.mark.parametrize("stem", sorted(BAD))
def test_each_bad_gesture_variant_is_rejected_by_its_check(stem):
    verdict, _ = _verdict(stem)
    assert not verdict.passed and BAD[stem] in {c.name for c in verdict.failed_checks}, _explain(verdict)


def test_a_program_hard_wired_to_the_one_file_fails_only_on_generated_inputs():
    verdict, _ = _verdict("bad_hardcoded")
    assert [c.name for c in verdict.failed_checks] == ["generated_inputs"], _explain(verdict)
    detail = verdict.failed_checks[0].detail
    assert "another input of the same schema" in detail and "That data/gestures.csv began:" in detail


def _number_forms(value: float) -> set[str]:
    return {repr(value), f"{value:.6g}", f"{value:.5g}", f"{value:.4g}"}


def test_no_check_detail_quotes_the_references_output():
    _, reference_outputs = _verdict("reference")
    # every computed value (the scaled features; ids and class codes are inputs and counts too)
    secret = set()
    for frame in reference_outputs.values():
        for value in frame.select_dtypes("float").to_numpy().ravel():
            if len(re.sub(r"\D", "", f"{abs(value):.6g}").strip("0")) >= 4:  # short numbers collide with counts
                secret |= _number_forms(float(value))
    assert len(secret) > 500
    for stem in BAD:
        verdict, _ = _verdict(stem)
        # a generated input's opening lines are shown as they are: inputs, whose 3-decimal
        # readings may equal a scaled output value by chance: the program's input, not an answer
        text = " ".join(c.detail.split(" began:\n")[0] for c in verdict.checks)
        quoted = set(re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", text)) & secret
        assert not quoted, f"{stem}: details quote expected values {sorted(quoted)[:5]}"


# ---- the same case through the plugin

def test_the_gesture_case_passes_the_plugins_self_test(pytester):
    for folder in ("cases", "prompts"):
        shutil.copytree(PROJECT / folder, pytester.path / folder)
    pytester.makeini("[pytest]\nautopilot_cases_dir = cases\n")
    result = pytester.runpytest("cases", "--autopilot-self-test", "-p", "no:xdist", "-v")
    result.assert_outcomes(passed=1 + len(BAD))
    output = result.stdout.str()
    assert "PytestConfigWarning" not in output and "gesture_scale" in output
