"""Prints the detections instead of writing the file."""
import json

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter

interpreter = Interpreter(model_path="model/shapes_detect.tflite")
interpreter.allocate_tensors()
inp = interpreter.get_input_details()[0]
outs = interpreter.get_output_details()
_, height, width, _ = inp["shape"]
labels = [line.strip() for line in open("model/labels.txt") if line.strip()]

image = cv2.imread("media/shapes.png")
h, w = image.shape[:2]
rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
tensor = np.expand_dims(cv2.resize(rgb, (width, height)), 0).astype(np.uint8)
interpreter.set_tensor(inp["index"], tensor)
interpreter.invoke()
classes = interpreter.get_tensor(outs[0]["index"])[0]
count = int(interpreter.get_tensor(outs[1]["index"])[0])
boxes = interpreter.get_tensor(outs[2]["index"])[0]
scores = interpreter.get_tensor(outs[3]["index"])[0]

for i in range(count):
    if scores[i] < 0.5:
        continue
    ymin, xmin, ymax, xmax = (float(v) for v in boxes[i])
    print(json.dumps({"frame": 0, "label": labels[int(classes[i])], "score": float(scores[i]),
                      "box": [xmin * w, ymin * h, xmax * w, ymax * h]}))
