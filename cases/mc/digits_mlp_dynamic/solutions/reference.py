"""Convert model.keras with dynamic-range quantization: int8 weights, float32 input and output."""
import tensorflow as tf

model = tf.keras.models.load_model("model.keras")
converter = tf.lite.TFLiteConverter.from_keras_model(model)
converter.optimizations = [tf.lite.Optimize.DEFAULT]
tflite_model = converter.convert()
with open("model_dynamic.tflite", "wb") as f:
    f.write(tflite_model)
print(f"wrote model_dynamic.tflite ({len(tflite_model)} bytes)")
