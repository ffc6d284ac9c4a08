"""Full-integer (int8) TFLite conversion of the digits CNN for TensorFlow Lite Micro."""
import numpy as np
import tensorflow as tf

tf.keras.utils.set_random_seed(0)
loaded = tf.keras.models.load_model("digits_cnn.keras")
# A fresh copy of the network with a clean graph and a fixed batch-free input signature.
model = tf.keras.models.clone_model(loaded)
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

with open("digits_int8.tflite", "wb") as f:
    f.write(tflite_model)
print(f"wrote digits_int8.tflite ({len(tflite_model)} bytes)")
