"""Train the MC (model conversion) stage's Keras models on the project's own data.

Writes, to ``cases/mc/assets/`` (or ``--out``), for each model a trio of files:

``<model>.keras``               the trained Keras model (saved without optimizer state)
``<stem>_calibration.npy``      float32 inputs from the *training* split, preprocessed exactly
                                like the model's inputs: what a representative dataset for
                                post-training quantization should yield
``<stem>_heldout.npz``          the held-out split: ``x`` (float32, model-ready), ``y`` (int32
                                labels), ``keras_probs`` (float32: the saved Keras model's
                                softmax outputs on ``x``) and ``classes`` (label names), so the
                                MC oracle can compare a converted model with the Keras model
                                without importing TensorFlow

Models
------
fruit  ``fruit_model.keras`` -- the paper's fruit classifier exactly: Keras Sequential
       3 -> Dense(8, relu) -> Dense(5, relu) -> Dense(3, softmax) (95 parameters), trained on
       the DP stage's dataset ``cases/dp/assets/fruit_colours.csv`` (Fruit,Red,Green,Blue),
       cleaned as the DP stage asks: exact duplicates dropped, rows with a missing value
       dropped, rows with a channel outside [0, 255] dropped (244 rows remain: apple 66,
       banana 91, orange 87). Inputs are Red, Green, Blue / 255 as float32, shape (n, 3);
       labels 0 apple, 1 banana, 2 orange (sorted names). Stratified split, 25 % held out
       (61 rows), numpy seed 7; calibration: 100 training rows. RMSprop (as the paper's
       saved model), 400 epochs, batch 16.
digits ``digits_cnn.keras`` -- a small CNN on scikit-learn's bundled ``load_digits``
       (1797 8x8 images, pixel values 0..16): inputs pixel / 16 as float32, shape
       (n, 8, 8, 1); Conv2D(8, 3x3, relu) -> MaxPooling2D(2) -> Flatten -> Dense(10, softmax)
       (810 parameters) -- a different converter path (CONV_2D, MAX_POOL_2D, RESHAPE).
       Stratified split, 20 % held out (359 rows), numpy seed 11; calibration: 100 training rows.
       Adam, 40 epochs, batch 32.
digits_mlp ``digits_mlp.keras`` -- the same digits as flat rows: inputs pixel / 16 as float32,
       shape (n, 64); Dense(128, relu) -> Dense(10, softmax) (9,610 parameters). Both weight
       matrices have at least 1024 elements, the converter's threshold for quantizing a weight
       in dynamic-range quantization, so that conversion changes this model (it leaves the
       fruit and digits_cnn models' small weights in float32). Same split and seed as digits;
       Adam, 30 epochs, batch 32.

The script prints each model's held-out accuracy; for the committed models (TensorFlow
2.21 / Keras 3.15, CPU): fruit 1.000 (61/61), digits 0.978 (351/359);
digits_mlp: see its line in the output (recorded in cases/mc/digits_mlp_dynamic.yaml).

Determinism: ``keras.utils.set_random_seed`` and ``tf.config.experimental.enable_op_determinism()``
before each model; the data splits use numpy generators with fixed seeds. A re-run on the
same TensorFlow build gives the same weights; the ``.keras`` zip itself is not byte-stable
(it holds a timestamp), which is why the tests compare predictions, not bytes.

Requirements (training time only; the harness never trains): tensorflow-cpu and, for the
digits data, scikit-learn. The project's sandbox interpreter deliberately has no
scikit-learn (the DP prompts say so), so install it beside it, e.g.::

    pip install --no-deps --target /tmp/mc-train-deps scikit-learn joblib threadpoolctl cloudpickle narwhals
    PYTHONPATH=/tmp/mc-train-deps .venv/bin/python scripts/train_mc_models.py

Usage: ``python scripts/train_mc_models.py [--out DIR] [--only fruit|digits|digits_mlp]``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "cases" / "mc" / "assets"
FRUIT_CSV = ROOT / "cases" / "dp" / "assets" / "fruit_colours.csv"
CHANNELS = ["Red", "Green", "Blue"]
CALIBRATION_ROWS = 100

FRUIT_SEED = 7
DIGITS_SEED = 11


def _quiet_tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    return keras, tf


def _stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test): per class, round(test_fraction * n) random rows go to test."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        idx = rng.permutation(idx)
        n_test = int(round(test_fraction * len(idx)))
        test.extend(idx[:n_test])
        train.extend(idx[n_test:])
    return np.sort(np.array(train)), np.sort(np.array(test))


def fruit_data() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The cleaned fruit rows: x float32 (n, 3) scaled /255, y int32, class names."""
    import pandas as pd

    df = pd.read_csv(FRUIT_CSV)
    df = df.drop_duplicates().dropna()
    in_range = ((df[CHANNELS] >= 0) & (df[CHANNELS] <= 255)).all(axis=1)
    df = df[in_range].reset_index(drop=True)
    classes = sorted(df["Fruit"].unique())
    y = df["Fruit"].map({c: i for i, c in enumerate(classes)}).to_numpy(dtype=np.int32)
    x = (df[CHANNELS].to_numpy(dtype=np.float32) / np.float32(255.0)).astype(np.float32)
    return x, y, classes


def digits_data() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """scikit-learn's bundled digits: x float32 (n, 8, 8, 1) scaled /16, y int32."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SystemExit("the digits model needs scikit-learn at training time; see this script's docstring") from None
    digits = load_digits()
    x = (digits.images.astype(np.float32) / np.float32(16.0))[..., None]
    return x, digits.target.astype(np.int32), [str(i) for i in range(10)]


def _clean_copy(keras, model, name: str):
    """The same architecture and weights, uncompiled: the saved file holds no optimizer state."""
    clean = keras.models.clone_model(model)
    clean.set_weights(model.get_weights())
    clean.name = name
    return clean


def _save(keras, model, name: str, stem: str, out: Path, x_train, x_test, y_test, classes, seed: int) -> float:
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / f"{name}.keras"
    model.save(model_path)
    reloaded = keras.models.load_model(model_path)  # predictions of exactly what is committed
    probs = reloaded.predict(x_test, verbose=0).astype(np.float32)
    rng = np.random.default_rng(seed + 1)
    calib = x_train[np.sort(rng.choice(len(x_train), size=min(CALIBRATION_ROWS, len(x_train)), replace=False))]
    np.save(out / f"{stem}_calibration.npy", calib.astype(np.float32))
    np.savez_compressed(out / f"{stem}_heldout.npz", x=x_test.astype(np.float32), y=y_test.astype(np.int32),
                        keras_probs=probs, classes=np.array(classes))
    accuracy = float((probs.argmax(axis=1) == y_test).mean())
    print(f"{model_path.name}: {model.count_params()} parameters, held-out accuracy {accuracy:.3f} "
          f"({int((probs.argmax(axis=1) == y_test).sum())}/{len(y_test)}); calibration {calib.shape}")
    return accuracy


def _seeded(seed: int):
    """Keras with every random source seeded and deterministic ops (before any data or layer)."""
    keras, tf = _quiet_tf()
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    return keras


def _fit_and_save(keras, model, optimizer, x, y, classes, split, seed: int, epochs: int, batch_size: int,
                  stem: str, kind: str, out: Path) -> float:
    train, test = split
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[train], y[train], epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0)
    return _save(keras, _clean_copy(keras, model, model.name), stem, kind, out,
                 x[train], x[test], y[test], classes, seed)


def train_fruit(out: Path) -> float:
    keras = _seeded(FRUIT_SEED)
    x, y, classes = fruit_data()
    split = _stratified_split(y, 0.25, FRUIT_SEED)
    model = keras.Sequential([
        keras.Input(shape=(3,), name="rgb"),
        keras.layers.Dense(8, activation="relu", name="dense_1"),
        keras.layers.Dense(5, activation="relu", name="dense_2"),
        keras.layers.Dense(3, activation="softmax", name="probabilities"),
    ], name="fruit_classifier")
    return _fit_and_save(keras, model, keras.optimizers.RMSprop(learning_rate=0.01), x, y, classes, split,
                         FRUIT_SEED, 400, 16, "fruit_model", "fruit", out)


def train_digits(out: Path) -> float:
    keras = _seeded(DIGITS_SEED)
    x, y, classes = digits_data()
    split = _stratified_split(y, 0.2, DIGITS_SEED)
    model = keras.Sequential([
        keras.Input(shape=(8, 8, 1), name="image"),
        keras.layers.Conv2D(8, 3, activation="relu", name="conv"),
        keras.layers.MaxPooling2D(2, name="pool"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(10, activation="softmax", name="probabilities"),
    ], name="digits_cnn")
    return _fit_and_save(keras, model, keras.optimizers.Adam(learning_rate=0.01), x, y, classes, split,
                         DIGITS_SEED, 40, 32, "digits_cnn", "digits", out)


def train_digits_mlp(out: Path) -> float:
    keras = _seeded(DIGITS_SEED)
    x, y, classes = digits_data()
    x = x.reshape(len(x), 64)
    split = _stratified_split(y, 0.2, DIGITS_SEED)
    model = keras.Sequential([
        keras.Input(shape=(64,), name="pixels"),
        keras.layers.Dense(128, activation="relu", name="hidden"),
        keras.layers.Dense(10, activation="softmax", name="probabilities"),
    ], name="digits_mlp")
    return _fit_and_save(keras, model, keras.optimizers.Adam(learning_rate=0.005), x, y, classes, split,
                         DIGITS_SEED, 30, 32, "digits_mlp", "digits_mlp", out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--only", choices=["fruit", "digits", "digits_mlp"])
    args = parser.parse_args(argv)
    if args.only in (None, "fruit"):
        train_fruit(args.out)
    if args.only in (None, "digits"):
        train_digits(args.out)
    if args.only in (None, "digits_mlp"):
        train_digits_mlp(args.out)


if __name__ == "__main__":
    main()
