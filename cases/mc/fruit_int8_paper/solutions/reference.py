"""Convert model.keras to an 8-bit post-training-quantized TFLite model: float32 input, uint8 output."""
import numpy as np
import tensorflow as tf

model = tf.keras.models.load_model("model.keras")
calibration = np.load("calibration.npy").astype(np.float32)  # (100, 3): Red, Green, Blue / 255


def representative_dataset():
    for row in calibration:
        yield [row.reshape(1, 3)]


converter = tf.lite.TFLiteConverter.from_keras_model(model)
converter.optimizations = [tf.lite.Optimize.DEFAULT]
converter.representative_dataset = representative_dataset
converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
converter.inference_input_type = tf.float32
converter.inference_output_type = tf.uint8
tflite_model = converter.convert()

with open("model_quant.tflite", "wb") as f:
    f.write(tflite_model)
print(f"wrote model_quant.tflite ({len(tflite_model)} bytes)")
