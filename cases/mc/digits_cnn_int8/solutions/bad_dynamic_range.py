"""8-bit TFLite conversion of the digits CNN."""
import tensorflow as tf

model = tf.keras.models.load_model("digits_cnn.keras")
converter = tf.lite.TFLiteConverter.from_keras_model(model)
converter.optimizations = [tf.lite.Optimize.DEFAULT]  # quantizes the weights to 8 bits
tflite_model = converter.convert()

with open("digits_int8.tflite", "wb") as f:
    f.write(tflite_model)
print(f"Quantized model written: {len(tflite_model)} bytes")
