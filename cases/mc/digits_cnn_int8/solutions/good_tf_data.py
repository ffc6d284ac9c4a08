"""The same full-integer conversion, calibration images batched by tf.data, written with pathlib."""
from pathlib import Path

import numpy as np
import tensorflow as tf

model = tf.keras.models.load_model("digits_cnn.keras")
images = np.load("calibration.npy").astype(np.float32)


def calibration_batches():
    for batch in tf.data.Dataset.from_tensor_slices(images).batch(1).take(len(images)):
        yield [tf.cast(batch, tf.float32)]


converter = tf.lite.TFLiteConverter.from_keras_model(model)
converter.optimizations = [tf.lite.Optimize.DEFAULT]
converter.representative_dataset = calibration_batches
converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
converter.inference_input_type = converter.inference_output_type = tf.int8
Path("digits_int8.tflite").write_bytes(converter.convert())
