model_path  = "models/ssd-mobilenet_v1/detect.tflite"
