"""Full-integer (int8) TFLite conversion of the fruit classifier for TensorFlow Lite Micro."""
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
tflite_model = converter.convert()

with open("model_int8.tflite", "wb") as f:
    f.write(tflite_model)
print("int8 model written to model_int8.tflite")
