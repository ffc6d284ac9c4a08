# Like the reference, but maps class ids to labels off by one (labels[class_id - 1]), as eleven
# archived qwen2.5-coder:32b programs do: the boxes are right, every sheep is labelled "horse".
import os

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter

# Phase 1: setup
model_path = "models/ssd-mobilenet_v1/detect.tflite"
label_path = "models/ssd-mobilenet_v1/labelmap.txt"
input_path = "data/object_detection/sheeps.mp4"
output_path = "results/object_detection/test_results/sheeps_detections.mp4"
confidence_threshold = 0.5

with open(label_path) as f:
    labels = [line.strip() for line in f.readlines()]

interpreter = Interpreter(model_path=model_path)
interpreter.allocate_tensors()
input_details = interpreter.get_input_details()
output_details = interpreter.get_output_details()
height, width = input_details[0]["shape"][1], input_details[0]["shape"][2]
floating_model = input_details[0]["dtype"] == np.float32

cap = cv2.VideoCapture(input_path)
if not cap.isOpened():
    print("Error opening video file")
    exit()
fps = cap.get(cv2.CAP_PROP_FPS)
frame_w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
frame_h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
os.makedirs(os.path.dirname(output_path), exist_ok=True)
out = cv2.VideoWriter(output_path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (frame_w, frame_h))

scores_seen = []
while True:
    # Phase 2: input loop
    ret, frame = cap.read()
    if not ret:
        break
    rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    input_data = np.expand_dims(cv2.resize(rgb, (width, height)), axis=0)
    if floating_model:
        input_data = (np.float32(input_data) - 127.5) / 127.5

    # Phase 3: inference
    interpreter.set_tensor(input_details[0]["index"], input_data)
    interpreter.invoke()

    # Phase 4: output
    boxes = interpreter.get_tensor(output_details[0]["index"])[0]
    classes = interpreter.get_tensor(output_details[1]["index"])[0]
    scores = interpreter.get_tensor(output_details[2]["index"])[0]
    for i in range(len(scores)):
        if scores[i] >= confidence_threshold:
            ymin, xmin, ymax, xmax = boxes[i]
            x1, y1 = int(xmin * frame_w), int(ymin * frame_h)
            x2, y2 = int(xmax * frame_w), int(ymax * frame_h)
            label = labels[int(classes[i]) - 1]  # off by one: the line before the class
            scores_seen.append(float(scores[i]))
            cv2.rectangle(frame, (x1, y1), (x2, y2), (10, 255, 0), 2)
            cv2.putText(frame, f"{label}: {int(scores[i] * 100)}%", (x1, max(y1 - 7, 10)),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.5, (10, 255, 0), 1)
    mean_score = sum(scores_seen) / len(scores_seen) if scores_seen else 0.0
    cv2.putText(frame, f"mAP: {mean_score:.2f}", (5, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 255), 1)
    out.write(frame)

# Phase 5: cleanup
cap.release()
out.release()
cv2.destroyAllWindows()
print(f"Output video saved to {output_path}")
