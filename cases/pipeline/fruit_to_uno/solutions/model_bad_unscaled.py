# Trains on the raw 0..255 readings, not on reading / 255.
import os

import numpy as np
import pandas as pd
import tensorflow as tf

CLASSES = ["apple", "banana", "orange"]


def load(path):
    frame = pd.read_csv(path)
    x = frame[["Red", "Green", "Blue"]].to_numpy(dtype=np.float32)
    y = frame["Fruit"].map({name: i for i, name in enumerate(CLASSES)}).to_numpy(dtype=np.int64)
    return x, y


x_train, y_train = load("out/train.csv")
x_test, y_test = load("out/test.csv")

tf.keras.utils.set_random_seed(0)
model = tf.keras.Sequential([
    tf.keras.Input(shape=(3,)),
    tf.keras.layers.Dense(8, activation="relu"),
    tf.keras.layers.Dense(3, activation="softmax"),
])
model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate=0.02),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=20, batch_size=16, verbose=0)
print("test accuracy:", model.evaluate(x_test, y_test, verbose=0)[1])

with open("out/model.tflite", "wb") as fh:
    fh.write(tf.lite.TFLiteConverter.from_keras_model(model).convert())


def c_array(name, values):
    values = np.asarray(values, dtype=np.float32)
    dims = "".join(f"[{n}]" for n in values.shape)
    if values.ndim == 1:
        body = "  " + ", ".join(f"{v:.9e}f" for v in values)
    else:
        body = ",\n".join("  {" + ", ".join(f"{v:.9e}f" for v in row) + "}" for row in values)
    return f"const float {name}{dims} = {{\n{body}\n}};\n"


(w1, b1), (w2, b2) = (layer.get_weights() for layer in model.layers)
os.makedirs("sketch", exist_ok=True)
with open("sketch/fruit_model.h", "w") as fh:
    fh.write("// The trained fruit classifier's weights, written by the model step.\n")
    fh.write("#ifndef FRUIT_MODEL_H\n#define FRUIT_MODEL_H\n\n")
    for name, values in (("fruit_w1", w1), ("fruit_b1", b1), ("fruit_w2", w2), ("fruit_b2", b2)):
        fh.write(c_array(name, values))
    fh.write("\n#endif\n")
