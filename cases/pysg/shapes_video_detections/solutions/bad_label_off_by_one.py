"""Maps class k to the label on line k - 1."""
import json
import os

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter

interpreter = Interpreter(model_path="model/shapes_detect.tflite")
interpreter.allocate_tensors()
inp = interpreter.get_input_details()[0]
outs = interpreter.get_output_details()
_, height, width, _ = inp["shape"]
labels = [line.strip() for line in open("model/labels.txt") if line.strip()]

os.makedirs("out", exist_ok=True)
cap = cv2.VideoCapture("media/shapes.mp4")
frame_index = 0
with open("out/detections.jsonl", "w") as f:
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        h, w = frame.shape[:2]
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
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
            f.write(json.dumps({"frame": frame_index, "label": labels[int(classes[i]) - 1], "score": float(scores[i]),
                                "box": [xmin * w, ymin * h, xmax * w, ymax * h]}) + "\n")
        frame_index += 1
cap.release()
print(f"{frame_index} frames")
