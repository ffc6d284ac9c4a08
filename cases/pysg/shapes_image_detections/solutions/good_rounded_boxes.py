"""The same detections, rounded to whole pixels and sorted by label."""
import json
from pathlib import Path

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter

interpreter = Interpreter(model_path="model/shapes_detect.tflite")
interpreter.allocate_tensors()
inp = interpreter.get_input_details()[0]
outs = interpreter.get_output_details()
_, height, width, _ = inp["shape"]
labels = Path("model/labels.txt").read_text().split()

image = cv2.imread("media/shapes.png")
h, w = image.shape[:2]
small = cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), (int(width), int(height)))
interpreter.set_tensor(inp["index"], small[np.newaxis].astype(inp["dtype"]))
interpreter.invoke()
result = [interpreter.get_tensor(o["index"])[0] for o in outs]
classes, count, boxes, scores = result[0], int(result[1]), result[2], result[3]

found = []
for k in range(count):
    if scores[k] >= 0.5:
        top, left, bottom, right = boxes[k]
        found.append({"frame": 0, "label": labels[int(classes[k])], "score": round(float(scores[k]), 2),
                      "box": [round(float(left * w)), round(float(top * h)), round(float(right * w)), round(float(bottom * h))]})
Path("out").mkdir(exist_ok=True)
Path("out/detections.jsonl").write_text("".join(json.dumps(d) + "\n" for d in sorted(found, key=lambda d: d["label"])))
