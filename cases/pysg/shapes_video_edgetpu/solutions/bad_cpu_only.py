"""Never tries the Edge TPU: runs the CPU model and says so."""
import json
import os

import cv2
import numpy as np

try:
    from ai_edge_litert.interpreter import Interpreter, load_delegate
except ImportError:  # the Coral's runtime
    from tflite_runtime.interpreter import Interpreter, load_delegate

MODEL = "model/shapes_detect.tflite"
EDGETPU_MODEL = "model/shapes_detect_edgetpu.tflite"
RUN_INFO = "out/run_info.json"
LABELS = "model/labels.txt"
VIDEO = "media/shapes.mp4"
OUT_VIDEO = "out/annotated.mp4"
OUT_DETECTIONS = "out/detections.jsonl"
THRESHOLD = 0.5
BOXES, CLASSES, SCORES, COUNT = 2, 0, 3, 1  # output positions, as the task says

with open(LABELS) as f:
    labels = [line.strip() for line in f if line.strip()]

interpreter = Interpreter(model_path=MODEL)
delegate, model_used = "cpu", MODEL
interpreter.allocate_tensors()
inp = interpreter.get_input_details()[0]
outs = interpreter.get_output_details()
_, height, width, _ = inp["shape"]

cap = cv2.VideoCapture(VIDEO)
if not cap.isOpened():
    raise SystemExit(f"cannot open {VIDEO}")
fps = cap.get(cv2.CAP_PROP_FPS)
size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
os.makedirs(os.path.dirname(OUT_VIDEO), exist_ok=True)
writer = cv2.VideoWriter(OUT_VIDEO, cv2.VideoWriter_fourcc(*"mp4v"), fps, size)

frames = 0
with open(OUT_DETECTIONS, "w") as det_file:
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        h, w = frame.shape[:2]
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        tensor = np.expand_dims(cv2.resize(rgb, (width, height)), 0).astype(inp["dtype"])
        interpreter.set_tensor(inp["index"], tensor)
        interpreter.invoke()
        boxes = interpreter.get_tensor(outs[BOXES]["index"])[0]
        classes = interpreter.get_tensor(outs[CLASSES]["index"])[0]
        scores = interpreter.get_tensor(outs[SCORES]["index"])[0]
        count = int(interpreter.get_tensor(outs[COUNT]["index"])[0])
        for i in range(min(count, len(scores))):
            if scores[i] < THRESHOLD:
                continue
            ymin, xmin, ymax, xmax = boxes[i]
            x1, y1, x2, y2 = xmin * w, ymin * h, xmax * w, ymax * h
            label = labels[int(classes[i])]
            cv2.rectangle(frame, (int(x1), int(y1)), (int(x2), int(y2)), (0, 255, 255), 2)
            cv2.putText(frame, f"{label} {scores[i]:.2f}", (int(x1), max(int(y1) - 5, 10)),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 255, 255), 1)
            det_file.write(json.dumps({"frame": frames, "label": label, "score": round(float(scores[i]), 4),
                                       "box": [round(float(v), 1) for v in (x1, y1, x2, y2)]}) + "\n")
        writer.write(frame)
        frames += 1

cap.release()
writer.release()
with open(RUN_INFO, "w") as f:
    json.dump({"delegate": delegate, "model": model_used, "frames": frames}, f)
print(f"processed {frames} frames ({delegate}) -> {OUT_VIDEO}, {OUT_DETECTIONS}")
