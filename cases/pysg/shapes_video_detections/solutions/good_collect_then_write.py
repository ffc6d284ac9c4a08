"""All detections collected first, written once at the end."""
import json
import os

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter


def detect(interpreter, frame, size):
    inp = interpreter.get_input_details()[0]
    outs = interpreter.get_output_details()
    tensor = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), size)[None, ...].astype(np.uint8)
    interpreter.set_tensor(inp["index"], tensor)
    interpreter.invoke()
    return [interpreter.get_tensor(o["index"])[0] for o in outs]


interpreter = Interpreter(model_path="model/shapes_detect.tflite")
interpreter.allocate_tensors()
_, height, width, _ = interpreter.get_input_details()[0]["shape"]
with open("model/labels.txt") as fh:
    labels = [line.strip() for line in fh if line.strip()]

rows = []
cap = cv2.VideoCapture("media/shapes.mp4")
n = 0
ok, frame = cap.read()
while ok:
    h, w = frame.shape[:2]
    classes, count, boxes, scores = detect(interpreter, frame, (int(width), int(height)))
    for i in range(int(count)):
        if scores[i] >= 0.5:
            y0, x0, y1, x1 = boxes[i]
            rows.append({"frame": n, "label": labels[int(classes[i])], "score": round(float(scores[i]), 3),
                         "box": [round(float(x0 * w), 1), round(float(y0 * h), 1), round(float(x1 * w), 1),
                                 round(float(y1 * h), 1)]})
    n += 1
    ok, frame = cap.read()

os.makedirs("out", exist_ok=True)
with open("out/detections.jsonl", "w") as fh:
    fh.writelines(json.dumps(r) + "\n" for r in rows)
