"""Quantize the Keras fruit classifier to 8-bit TensorFlow Lite with the calibration data."""
import numpy as np
import tensorflow as tf

model = tf.keras.models.load_model("model.keras")
calibration = np.load("calibration.npy").astype(np.float32)


def representative_dataset():
    for row in calibration:
        yield [row.reshape(1, 3)]


converter = tf.lite.TFLiteConverter.from_keras_model(model)
converter.optimizations = [tf.lite.Optimize.DEFAULT]
converter.representative_dataset = representative_dataset
converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
converter.inference_input_type = tf.float32
converter.inference_output_type = tf.int8
tflite_model = converter.convert()

with open("model_quant.tflite", "wb") as f:
    f.write(tflite_model)
print("Model converted and quantized successfully!")
