"""Dynamic-range quantization through an exported SavedModel."""
import tensorflow as tf

model = tf.keras.models.load_model("model.keras")
model.export("saved_model")
converter = tf.lite.TFLiteConverter.from_saved_model("saved_model")
converter.optimizations = [tf.lite.Optimize.DEFAULT]
open("model_dynamic.tflite", "wb").write(converter.convert())
