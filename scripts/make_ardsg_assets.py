"""Generate the ArdSG (Arduino sketch generation) stage's assets in ``cases/ardsg/assets/``.

The firmware cases classify a fruit by its colour on a microcontroller with the project's
own trained model: the MC stage's Keras classifier ``cases/mc/assets/fruit_model.keras``
(3 -> Dense(8, relu) -> Dense(5, relu) -> Dense(3, softmax), trained on the DP stage's fruit
data; inputs Red, Green, Blue / 255; classes 0 apple, 1 banana, 2 orange).

Written files
-------------
``fruit_model.h``         the model as an emlearn C header (``emlearn.convert(model,
                          method="loadable")``, name ``fruit_model``): float weights, one
                          function ``int32_t fruit_model_predict(const float *features,
                          int32_t n_features)`` returning the class index, and the
                          ``EmlNet fruit_model`` for ``eml_net_predict_proba``.
``emlearn/``              the four emlearn headers that header needs (``eml_net.h``,
                          ``eml_common.h``, ``eml_net_common.h``, ``eml_log.h``), the version
                          and the licence, laid out as an Arduino library (vendored so a build
                          never depends on the installed emlearn version).
``sim_vectors_visible.h`` ``sim_vectors_hidden.h``
                          two sets of colour readings ``{r, g, b, c}`` (0..255 counts like the
                          training data; ``c`` = r + g + b, the clear channel) as the
                          simulated sensors replay them (SimAPDS9960 on AVR, the C shim on
                          Cortex-M). ``visible`` (the build the loop runs): 24 held-out rows of
                          the MC stage, 8 per predicted class. ``hidden`` (only the oracle's
                          re-build sees it): 12 other held-out rows jittered by a few counts
                          and 12 random colours -- a firmware that does not run *the model*
                          (rules, lookup tables, wrong scaling) fails there.
``vectors.json``          both sets with the reference model's class per reading (what the
                          strict oracles compare the printed classes with), its
                          probabilities, the class names, and ``prompt_samples``: six
                          training rows shown in the prompts (never in a test set).
``fruit_model_tflite.h``  the same Keras model converted to a float32 TensorFlow Lite
                          flatbuffer as a C array (``alignas(16) const unsigned char
                          fruit_model_tflite[]``, ``fruit_model_tflite_len``): the paper's
                          ``model.h`` for the Nano 33 BLE Sense / TFLM case.

Reference predictions: a float32 numpy forward pass with exactly the weights written in
``fruit_model.h`` (what the C code computes); the script asserts that the Keras model agrees
on every reading and only takes readings whose top-two probability margin is at least
``MIN_MARGIN``, so float rounding on an 8-bit AVR (``expf`` of avr-libc) cannot flip a class.

Deterministic: fixed numpy seed; re-running on the same TensorFlow/emlearn versions rewrites
identical files (the tests check the vector files and the model header byte for byte).

Requirements (asset generation only; the harness never imports emlearn or TensorFlow for
ArdSG): ``pip install emlearn`` and TensorFlow (``pip install "pytest-autopilot[mc]"``).
Note that importing emlearn (its ``bayes`` module) sets ``numpy.seterr(all="raise")`` process-wide;
this script imports and uses it inside ``numpy.errstate()`` blocks, which restore the previous setting.

Usage: ``python scripts/make_ardsg_assets.py [--out DIR]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "cases" / "ardsg" / "assets"
KERAS_MODEL = ROOT / "cases" / "mc" / "assets" / "fruit_model.keras"
HELDOUT = ROOT / "cases" / "mc" / "assets" / "fruit_heldout.npz"
CALIBRATION = ROOT / "cases" / "mc" / "assets" / "fruit_calibration.npy"
SEED = 20260108
MIN_MARGIN = 0.15
VISIBLE_PER_CLASS = 8
HIDDEN_JITTERED = 12
HIDDEN_RANDOM = 12
MIN_HIDDEN_PER_CLASS = 4
EMLEARN_HEADERS = ("eml_net.h", "eml_common.h", "eml_net_common.h", "eml_log.h")
MODEL_NAME = "fruit_model"
CLASSES = ["apple", "banana", "orange"]


def _quiet_tf() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def _emlearn():
    with np.errstate():  # emlearn modules call numpy.seterr(all="raise") when imported
        import emlearn
        import emlearn.bayes  # noqa: F401  (imported lazily by convert otherwise)
    return emlearn


# --------------------------------------------------------------------------- the model


def emlearn_header(model) -> str:
    """The emlearn 'loadable' header of the Keras model (converted in a temp dir: emlearn
    leaves ./tmp files behind)."""
    emlearn = _emlearn()
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="ardsg-emlearn-") as tmp:
        os.chdir(tmp)
        try:
            with np.errstate():  # restores numpy's error state whatever emlearn sets
                converted = emlearn.convert(model, method="loadable")
                converted.save(file=str(Path(tmp) / "model.h"), name=MODEL_NAME)
            body = (Path(tmp) / "model.h").read_text(encoding="utf-8")
        finally:
            os.chdir(cwd)
    version = (Path(emlearn.includedir) / "VERSION.txt").read_text().strip()
    head = (f"/* {MODEL_NAME}.h -- generated by scripts/make_ardsg_assets.py from cases/mc/assets/fruit_model.keras\n"
            f" * with emlearn {version} (method loadable). Inputs: Red/255, Green/255, Blue/255 as float.\n"
            f" * Classes: 0 apple, 1 banana, 2 orange. */\n")
    return head + body


def header_network(header: str) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """(weights [n_in, n_out], biases, activation) per layer, parsed from the emlearn header
    (``eml_net_forward`` reads weight ``o + i * n_out`` for input i, output o)."""
    arrays = {name: np.array([float(v.strip().rstrip("f")) for v in body.split(",")], dtype=np.float32)
              for name, body in re.findall(r"static const float (\w+)\[\d+\] = \{([^}]*)\};", header)}
    layers = []
    for n_out, n_in, weights, biases, activation in re.findall(
            r"\{ (\d+), (\d+), (\w+), (\w+), EmlNetActivation(\w+) \}", header):
        layers.append((arrays[weights].reshape(int(n_in), int(n_out)), arrays[biases], activation))
    return layers


def forward(layers, x: np.ndarray) -> np.ndarray:
    """What the C code computes, in float32."""
    h = np.asarray(x, dtype=np.float32)
    for w, b, activation in layers:
        h = (h @ w + b).astype(np.float32)
        if activation == "Relu":
            h = np.maximum(h, 0)
        elif activation == "Softmax":
            with np.errstate(under="ignore"):
                e = np.exp(h - h.max(axis=1, keepdims=True))
            h = e / e.sum(axis=1, keepdims=True)
        else:
            raise ValueError(f"activation {activation} not handled")
    return h


def reference_model(header: str, keras_model):
    """The forward pass of the header's weights, checked against the Keras model it came from."""
    layers = header_network(header)
    probe = np.random.default_rng(0).uniform(0, 1, size=(64, 3)).astype(np.float32)
    got, want = forward(layers, probe), keras_model.predict(probe, verbose=0)
    if not np.allclose(got, want, atol=2e-4):
        raise AssertionError(f"the emlearn header does not reproduce the Keras model (max diff {abs(got - want).max():.2g})")
    return lambda x: forward(layers, x)


def tflite_header(keras_model) -> str:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints its signature dump
        data = converter.convert()
    lines = [", ".join(f"0x{b:02x}" for b in data[i:i + 12]) for i in range(0, len(data), 12)]
    body = ",\n  ".join(lines)
    return ("/* fruit_model_tflite.h -- generated by scripts/make_ardsg_assets.py: cases/mc/assets/fruit_model.keras\n"
            f" * converted to a float32 TensorFlow Lite flatbuffer (TensorFlow {tf.__version__}, no quantization).\n"
            " * Input: float32 [1, 3] = Red/255, Green/255, Blue/255. Output: float32 [1, 3] class\n"
            " * probabilities in the order apple, banana, orange. */\n"
            "#ifndef FRUIT_MODEL_TFLITE_H\n#define FRUIT_MODEL_TFLITE_H\n\n"
            f"alignas(16) const unsigned char fruit_model_tflite[] = {{\n  {body}\n}};\n"
            f"const unsigned int fruit_model_tflite_len = {len(data)};\n\n#endif\n")


# --------------------------------------------------------------------------- readings


def _margin(probs: np.ndarray) -> np.ndarray:
    top = np.sort(probs, axis=1)
    return top[:, -1] - top[:, -2]


def _rgbc(counts: np.ndarray) -> list[list[int]]:
    counts = np.clip(np.rint(counts), 0, 255).astype(int)
    return [[int(r), int(g), int(b), int(r + g + b)] for r, g, b in counts]


def vector_sets(predict, keras_model) -> dict:
    rng = np.random.default_rng(SEED)
    held = np.load(HELDOUT)
    counts = np.rint(held["x"] * 255).astype(int)
    probs = predict(counts / 255.0)
    labels = probs.argmax(axis=1)
    ok = _margin(probs) >= MIN_MARGIN
    visible_idx: list[int] = []
    for k in range(3):
        candidates = [i for i in rng.permutation(len(counts)) if labels[i] == k and ok[i]]
        if len(candidates) < VISIBLE_PER_CLASS:
            raise AssertionError(f"only {len(candidates)} confident held-out rows of class {k}")
        visible_idx += candidates[:VISIBLE_PER_CLASS]
    visible_idx = [int(i) for i in rng.permutation(visible_idx)]
    rest = [i for i in rng.permutation(len(counts)) if i not in set(visible_idx)]

    hidden: list[np.ndarray] = []
    for i in rest:  # held-out rows the visible set does not use, moved by a few counts
        if len(hidden) == HIDDEN_JITTERED:
            break
        moved = np.clip(counts[i] + rng.normal(0, 6, size=3), 0, 255)
        if _margin(predict(np.rint(moved)[None] / 255.0))[0] >= MIN_MARGIN:
            hidden.append(np.rint(moved))
    randoms: list[np.ndarray] = []
    while len(randoms) < HIDDEN_RANDOM:
        colour = rng.integers(0, 256, size=3).astype(float)
        if colour.sum() >= 30 and _margin(predict(colour[None] / 255.0))[0] >= MIN_MARGIN:
            randoms.append(colour)
    hidden_counts = np.array(hidden + randoms)
    order = rng.permutation(len(hidden_counts))
    hidden_counts = hidden_counts[order]

    sets = {}
    for name, rows in (("visible", counts[visible_idx]), ("hidden", hidden_counts)):
        rgbc = _rgbc(rows)
        x = np.array([v[:3] for v in rgbc], dtype=np.float32) / 255.0
        p = predict(x)
        keras_labels = keras_model.predict(x, verbose=0).argmax(axis=1)
        if not (p.argmax(axis=1) == keras_labels).all():
            raise AssertionError(f"set {name}: the header's model and the Keras model disagree")
        if (_margin(p) < MIN_MARGIN).any():
            raise AssertionError(f"set {name}: a reading is too close to a decision boundary")
        sets[name] = {"readings": rgbc, "expected": [int(k) for k in p.argmax(axis=1)],
                      "probabilities": [[round(float(v), 4) for v in row] for row in p]}
    per_class = np.bincount(sets["hidden"]["expected"], minlength=3)
    if per_class.min() < MIN_HIDDEN_PER_CLASS:
        raise AssertionError(f"hidden set class counts {per_class.tolist()} too uneven; change SEED")
    return sets


def vectors_header(name: str, readings: list[list[int]]) -> str:
    rows = ",\n".join(f"  {{{r}, {g}, {b}, {c}}}" for r, g, b, c in readings)
    return (f"/* sim_vectors.h -- generated by scripts/make_ardsg_assets.py: test set \"{name}\", {len(readings)} readings\n"
            " * {red, green, blue, clear} in the order the simulated sensor returns them. The including\n"
            " * file defines SIM_ROM (PROGMEM on AVR, empty elsewhere). */\n"
            "#ifndef SIM_VECTORS_H\n#define SIM_VECTORS_H\n\n#include <stdint.h>\n\n"
            "#ifndef SIM_ROM\n#define SIM_ROM\n#endif\n\n"
            f"#define SIM_VECTOR_SET \"{name}\"\n#define SIM_VECTOR_COUNT {len(readings)}\n\n"
            f"static const uint16_t sim_vectors[SIM_VECTOR_COUNT][4] SIM_ROM = {{\n{rows}\n}};\n\n#endif\n")


def prompt_samples(predict) -> list[dict]:
    """Six training rows (the first two of each predicted class) for the prompts; the test
    sets come from the held-out rows, so these are never replayed."""
    counts = np.rint(np.load(CALIBRATION) * 255).astype(int)
    labels = predict(counts / 255.0).argmax(axis=1)
    rows = [i for k in range(3) for i in np.flatnonzero(labels == k)[:2]]
    return [{"red": int(counts[i, 0]), "green": int(counts[i, 1]), "blue": int(counts[i, 2]),
             "class": CLASSES[labels[i]]} for i in rows]


def _json(data) -> str:
    """Indented JSON with every list of numbers on one line."""
    text = json.dumps(data, indent=1)
    return re.sub(r"\[\s*([-0-9.,\s]+?)\s*\]", lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]", text)


# --------------------------------------------------------------------------- files


def vendor_emlearn(out: Path) -> None:
    emlearn = _emlearn()
    include = Path(emlearn.includedir)
    lib = out / "emlearn"
    if lib.exists():
        shutil.rmtree(lib)
    lib.mkdir(parents=True)
    for name in EMLEARN_HEADERS:
        shutil.copyfile(include / name, lib / name)
    version = (include / "VERSION.txt").read_text().strip()
    (lib / "VERSION.txt").write_text(version + "\n")
    licence = next(Path(emlearn.__file__).parent.parent.glob("emlearn-*.dist-info/licenses/LICENSE*"), None)
    if licence is not None:
        shutil.copyfile(licence, lib / "LICENSE.md")
    (lib / "library.properties").write_text(
        f"name=emlearn\nversion={version}\nauthor=Jon Nordby\nmaintainer=pytest-autopilot (vendored copy)\n"
        "sentence=Machine learning for microcontrollers (the headers eml_net.h needs).\n"
        "paragraph=Vendored by scripts/make_ardsg_assets.py from the emlearn Python package.\n"
        "category=Data Processing\nurl=https://github.com/emlearn/emlearn\narchitectures=*\nincludes=eml_net.h\n")


def generate(out: Path) -> dict:
    _quiet_tf()
    import keras

    model = keras.models.load_model(KERAS_MODEL, compile=False)
    out.mkdir(parents=True, exist_ok=True)
    header = emlearn_header(model)
    predict = reference_model(header, model)
    sets = vector_sets(predict, model)
    (out / f"{MODEL_NAME}.h").write_text(header, encoding="utf-8")
    vendor_emlearn(out)
    for name, data in sets.items():
        (out / f"sim_vectors_{name}.h").write_text(vectors_header(name, data["readings"]), encoding="utf-8")
    summary = {"classes": CLASSES, "features": "red/255, green/255, blue/255",
               "min_margin": MIN_MARGIN, "seed": SEED, "prompt_samples": prompt_samples(predict), "sets": sets}
    (out / "vectors.json").write_text(_json(summary) + "\n", encoding="utf-8")
    (out / "fruit_model_tflite.h").write_text(tflite_header(model), encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    summary = generate(args.out)
    for name, data in summary["sets"].items():
        print(f"{name}: {len(data['readings'])} readings, classes {np.bincount(data['expected'], minlength=3).tolist()}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
