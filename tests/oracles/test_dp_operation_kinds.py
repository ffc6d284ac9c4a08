"""dp_operation checks what an operation of a known kind must do (issue 22: a scaler fitted on
train and test together passed). On small tables: the defining property of dropping, encoding and
scaling holds for a correct operation and fails, with a named check, for the usual mistakes. The
case's known-bad solutions (cases/dp/fruit_pipeline.yaml) are caught the same way in its self-test."""

from __future__ import annotations

import pandas as pd

from pytest_autopilot.oracles.dp_operation import _role_of
from pytest_autopilot.oracles.dp_operation_kinds import drop_checks, encode_checks, scale_checks

RAW = pd.DataFrame({"Fruit": ["apple", "banana", "orange", "apple", "banana"], "Red": [200, 220, 250, 300, 180]})
TRAIN = pd.DataFrame({"Fruit": ["apple", "banana", "orange", "apple"], "Red": [10.0, 20.0, 30.0, 50.0]})
TEST = pd.DataFrame({"Fruit": ["banana", "orange"], "Red": [0.0, 60.0]})  # beyond the training range
ROLE = _role_of("train", "test")


def _failed(checks) -> dict[str, str]:
    return {c.name: c.detail for c in checks if not c.passed}


def test_dropping_may_only_remove_unchanged_rows_and_columns():
    assert not _failed(drop_checks({"out/in_range.csv": RAW[RAW.Red <= 255]}, RAW, "remove_outliers"))
    assert not _failed(drop_checks({"out/no_red.csv": RAW[["Fruit"]]}, RAW, "drop_columns"))
    clipped = RAW.assign(Red=RAW.Red.clip(0, 255))
    detail = _failed(drop_checks({"out/in_range.csv": clipped}, RAW, "remove_outliers"))["drop_only_removes"]
    assert "out/in_range.csv holds 1 row(s) that are not unchanged input rows" in detail


def test_an_encoding_gives_each_class_one_code_and_different_classes_different_codes():
    codes = {"apple": 0, "banana": 1, "orange": 2}
    assert not _failed(encode_checks({"out/e.csv": RAW.assign(Label=RAW.Fruit.map(codes))}, RAW, "Fruit", "encode_labels"))
    onehot = RAW.assign(**{f"is_{c}": (RAW.Fruit == c).astype(int) for c in codes})
    assert not _failed(encode_checks({"out/e.csv": onehot}, RAW, "Fruit", "encode_labels"))
    shared = RAW.assign(Label=RAW.Fruit.map({"apple": 0, "banana": 1, "orange": 1}))
    assert "different classes share one code" in _failed(
        encode_checks({"out/e.csv": shared}, RAW, "Fruit", "encode_labels"))["encoding_one_to_one"]
    assert "no new column" in _failed(encode_checks({"out/e.csv": RAW}, RAW, "Fruit", "encode_labels"))["encoding_one_to_one"]


def _scaled(low: float, span: float) -> dict[str, pd.DataFrame]:
    return {"out/train_scaled.csv": TRAIN.assign(Red=(TRAIN.Red - low) / span),
            "out/test_scaled.csv": TEST.assign(Red=(TEST.Red - low) / span)}


def test_a_scaling_of_a_split_is_fitted_on_the_training_file_and_applied_to_both():
    inputs = {"out/train.csv": TRAIN, "out/test.csv": TEST}
    assert not _failed(scale_checks(_scaled(10.0, 40.0), inputs, ROLE, "scale_features"))  # train min-max
    standard = _scaled(TRAIN.Red.mean(), TRAIN.Red.std())
    assert not _failed(scale_checks(standard, inputs, ROLE, "scale_features"))
    leaked = _failed(scale_checks(_scaled(0.0, 60.0), inputs, ROLE, "scale_features"))  # min-max of both files
    assert list(leaked) == ["scaling_fitted_on_train"] and "Red scaled with statistics of the training and test" \
        in leaked["scaling_fitted_on_train"]
    refit = _scaled(10.0, 40.0) | {"out/test_scaled.csv": TEST.assign(Red=(TEST.Red - 0.0) / 60.0)}
    assert list(_failed(scale_checks(refit, inputs, ROLE, "scale_features"))) == ["scaling_same_for_test"]


def test_a_scaling_before_the_split_is_not_judged_by_the_split_rules():
    assert scale_checks({"out/scaled.csv": RAW.assign(Red=RAW.Red / 255)}, {"out/raw.csv": RAW}, ROLE, "scale") == []
