"""Convert model.keras to a float32 TFLite model (no quantization)."""
import tensorflow as tf

model = tf.keras.models.load_model("model.keras")
converter = tf.lite.TFLiteConverter.from_keras_model(model)
tflite_model = converter.convert()
with open("model.tflite", "wb") as f:
    f.write(tflite_model)
print(f"wrote model.tflite ({len(tflite_model)} bytes)")
