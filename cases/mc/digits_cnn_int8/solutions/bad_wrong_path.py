"""Full-integer (int8) TFLite conversion of the digits CNN for TensorFlow Lite Micro."""
import os

import numpy as np
import tensorflow as tf

model = tf.keras.models.load_model("digits_cnn.keras")
calibration = np.load("calibration.npy").astype(np.float32)


def representative_dataset():
    for image in calibration:
        yield [image[np.newaxis, ...]]


converter = tf.lite.TFLiteConverter.from_keras_model(model)
converter.optimizations = [tf.lite.Optimize.DEFAULT]
converter.representative_dataset = representative_dataset
converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
converter.inference_input_type = tf.int8
converter.inference_output_type = tf.int8
tflite_model = converter.convert()

os.makedirs("models", exist_ok=True)
with open("models/digits_cnn_int8.tflite", "wb") as f:
    f.write(tflite_model)
print("saved models/digits_cnn_int8.tflite")
