"""The same float32 conversion through an exported SavedModel, written with pathlib."""
from pathlib import Path

import tensorflow as tf

model = tf.keras.models.load_model("model.keras")
model.export("exported")
converter = tf.lite.TFLiteConverter.from_saved_model("exported")
Path("model.tflite").write_bytes(converter.convert())
