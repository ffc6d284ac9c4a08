import tensorflow as tf

tf.keras.utils.set_random_seed(0)  # a fixed "fresh" model, so the self-test is deterministic

model = tf.keras.Sequential([
    tf.keras.Input(shape=(3,)),
    tf.keras.layers.Dense(8, activation="relu"),
    tf.keras.layers.Dense(5, activation="relu"),
    tf.keras.layers.Dense(3, activation="softmax"),
])
converter = tf.lite.TFLiteConverter.from_keras_model(model)
with open("model.tflite", "wb") as f:
    f.write(converter.convert())
print("Model converted successfully")
