"""The same full-integer conversion through an exported SavedModel, calibrated with every row in
random order (a different but equally valid representative dataset)."""
import numpy as np
import tensorflow as tf

tf.keras.models.load_model("model.keras").export("saved_model")
calibration = np.load("calibration.npy").astype(np.float32)
order = np.random.default_rng(0).permutation(len(calibration))


def representative_dataset():
    for i in order:
        yield [calibration[i : i + 1]]


converter = tf.lite.TFLiteConverter.from_saved_model("saved_model")
converter.optimizations = [tf.lite.Optimize.DEFAULT]
converter.representative_dataset = representative_dataset
converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
converter.inference_input_type = tf.int8
converter.inference_output_type = tf.int8
open("model_int8.tflite", "wb").write(converter.convert())
