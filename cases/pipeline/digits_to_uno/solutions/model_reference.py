# Train the digits network on the prepared data, convert it with int8 weights and export its
# weights for the Uno: int8 with one float scale per output unit, in program flash (PROGMEM).
import os

import numpy as np
import pandas as pd
import tensorflow as tf

PIXELS = [f"pixel_{i}" for i in range(64)]


def load(path):
    frame = pd.read_csv(path)
    return frame[PIXELS].to_numpy(dtype=np.float32) / 16.0, frame["label"].to_numpy(dtype=np.int64)


x_train, y_train = load("out/train.csv")
x_test, y_test = load("out/test.csv")

tf.keras.utils.set_random_seed(0)
model = tf.keras.Sequential([
    tf.keras.Input(shape=(64,)),
    tf.keras.layers.Dense(80, activation="relu"),
    tf.keras.layers.Dense(10, activation="softmax"),
])
model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate=0.005),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=30, batch_size=32, verbose=0)
print("test accuracy:", model.evaluate(x_test, y_test, verbose=0)[1])

converter = tf.lite.TFLiteConverter.from_keras_model(model)
converter.optimizations = [tf.lite.Optimize.DEFAULT]  # dynamic range: int8 weights, float input and output
with open("out/model.tflite", "wb") as fh:
    fh.write(converter.convert())


def quantise(kernel):
    """Symmetric int8 per output unit (column): kernel ~= q * scale[column]."""
    top = np.abs(kernel).max(axis=0)
    scale = np.where(top > 0, top / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.round(kernel / scale), -127, 127).astype(np.int8)
    return q, scale


def c_array(ctype, name, values, fmt):
    values = np.asarray(values)
    dims = "".join(f"[{n}]" for n in values.shape)
    rows = values.reshape(1, -1) if values.ndim == 1 else values
    body = ",\n".join("  " + ("{" if values.ndim > 1 else "") + ", ".join(fmt(v) for v in row)
                      + ("}" if values.ndim > 1 else "") for row in rows)
    return f"const {ctype} {name}{dims} PROGMEM = {{\n{body}\n}};\n"


(w1, b1), (w2, b2) = (layer.get_weights() for layer in model.layers)
(q1, s1), (q2, s2) = quantise(w1), quantise(w2)
as_int, as_float = (lambda v: str(int(v))), (lambda v: f"{float(v):.9e}f")
os.makedirs("sketch", exist_ok=True)
with open("sketch/digits_model.h", "w") as fh:
    fh.write("// The trained digits network for the Uno, written by the model step.\n")
    fh.write("#ifndef DIGITS_MODEL_H\n#define DIGITS_MODEL_H\n\n#include <avr/pgmspace.h>\n#include <stdint.h>\n\n")
    fh.write(c_array("int8_t", "digits_w1", q1, as_int))
    fh.write(c_array("float", "digits_s1", s1, as_float))
    fh.write(c_array("float", "digits_b1", b1, as_float))
    fh.write(c_array("int8_t", "digits_w2", q2, as_int))
    fh.write(c_array("float", "digits_s2", s2, as_float))
    fh.write(c_array("float", "digits_b2", b2, as_float))
    fh.write("\n#endif\n")
