"""The harness's own reference detection pipeline, for the PyCPU-SG / PyTPU-SG oracles.

It runs a detector with the interface of the paper's SSD-MobileNet ``detect.tflite`` (one
image input; outputs boxes [1, N, 4] as normalised ymin, xmin, ymax, xmax; classes [1, N];
scores [1, N]; count [1] -- at indices the case names) on every frame of a video (or on one
image), exactly as the prompt tells the generated program to: decode with OpenCV, BGR -> RGB, resize to the
input size (bilinear), uint8 pixels as they are (a float32 input gets ``(x - mean) / std``),
keep detections with score >= the threshold, map class k to label line ``k + label_offset``
(labels ``???`` are skipped), box in pixels of the original frame as [x1, y1, x2, y2].

The result for a (model file, video, pipeline settings) is computed once and cached: in
memory and in a JSON file named by the sha256 of all of them in ``core.util.cache_dir("detection")``
(``$AUTOPILOT_CACHE_DIR/detection``, default ``~/.cache/pytest-autopilot/detection``; outside the
sandbox's writable paths), under a machine-wide file lock so parallel xdist workers compute
it only once.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from pytest_autopilot.core.util import atomic_write, cache_dir, file_lock, sha256_file

PIPELINE_VERSION = 1
DEFAULT_OUTPUTS = {"boxes": 0, "classes": 1, "scores": 2, "count": 3}
SKIP_LABELS = ("???",)
_MEMO: dict[str, dict[str, Any]] = {}
_MEMO_LOCK = threading.Lock()


@dataclass(frozen=True)
class DetectorSpec:
    model: Path
    labels: list[str] | tuple[str, ...]
    score_threshold: float = 0.5
    outputs: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_OUTPUTS))
    label_offset: int = 0  # class k -> labels[k + label_offset]
    input_mean: float = 127.5  # float32 inputs only
    input_std: float = 127.5

    def settings(self) -> dict[str, Any]:
        return {"labels": list(self.labels), "score_threshold": self.score_threshold,
                "outputs": dict(sorted(self.outputs.items())), "label_offset": self.label_offset,
                "input_mean": self.input_mean, "input_std": self.input_std}


def load_labels(path: Path) -> list[str]:
    return [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def interpreter(model: Path):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - older stacks
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            import tensorflow as tf

            Interpreter = tf.lite.Interpreter
    it = Interpreter(model_path=str(model))
    it.allocate_tensors()
    return it


class Detector:
    def __init__(self, spec: DetectorSpec):
        import numpy as np

        self.spec = spec
        self.it = interpreter(spec.model)
        inp = self.it.get_input_details()[0]
        self.input_index = inp["index"]
        self.input_dtype = np.dtype(inp["dtype"])
        _, self.height, self.width, _ = (int(v) for v in inp["shape"])
        self.output_index = {name: self.it.get_output_details()[i]["index"] for name, i in spec.outputs.items()}

    def detect(self, frame_rgb) -> list[dict[str, Any]]:
        import cv2
        import numpy as np

        h, w = frame_rgb.shape[:2]
        image = cv2.resize(frame_rgb, (self.width, self.height), interpolation=cv2.INTER_LINEAR)
        if self.input_dtype == np.float32:
            tensor = ((image.astype(np.float32) - self.spec.input_mean) / self.spec.input_std)[None]
        else:
            tensor = image.astype(self.input_dtype)[None]
        self.it.set_tensor(self.input_index, tensor)
        self.it.invoke()
        get = lambda name: self.it.get_tensor(self.output_index[name])  # noqa: E731
        boxes, classes, scores = get("boxes")[0], get("classes")[0], get("scores")[0]
        count = int(np.asarray(get("count")).reshape(-1)[0]) if "count" in self.output_index else len(scores)
        found = []
        for k in range(min(count, len(scores))):
            score = float(scores[k])
            if score < self.spec.score_threshold:
                continue
            index = int(classes[k]) + self.spec.label_offset
            if not 0 <= index < len(self.spec.labels) or self.spec.labels[index] in SKIP_LABELS:
                continue
            ymin, xmin, ymax, xmax = (float(v) for v in boxes[k])
            box = [max(0.0, xmin * w), max(0.0, ymin * h), min(float(w), xmax * w), min(float(h), ymax * h)]
            found.append({"label": self.spec.labels[index], "class_id": int(classes[k]), "score": round(score, 4),
                          "box": [round(v, 2) for v in box]})
        return found


def run_detector_on_frames(spec: DetectorSpec, frames_rgb) -> list[list[dict[str, Any]]]:
    detector = Detector(spec)
    return [detector.detect(frame) for frame in frames_rgb]


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def read_frames(path: Path) -> Iterator[Any]:
    """BGR frames of a video, as OpenCV decodes them; an image is a one-frame video."""
    import cv2

    if Path(path).suffix.lower() in IMAGE_SUFFIXES:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is not None:
            yield image
        return
    cap = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield frame
    finally:
        cap.release()


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match(pred: list[dict], ref: list[dict], threshold: float, use_label: bool = True) -> list[tuple[int, int]]:
    """Greedy one-to-one matching by IoU (best pairs first); returns (pred index, ref index)."""
    pairs = []
    for i, p in enumerate(pred):
        for j, r in enumerate(ref):
            if use_label and p.get("label") != r["label"]:
                continue
            value = iou(p["box"], r["box"])
            if value >= threshold:
                pairs.append((value, i, j))
    pairs.sort(key=lambda t: (-t[0], t[1], t[2]))
    used_p, used_r, out = set(), set(), []
    for _, i, j in pairs:
        if i not in used_p and j not in used_r:
            used_p.add(i)
            used_r.add(j)
            out.append((i, j))
    return out


def reference_key(spec: DetectorSpec, video: Path) -> str:
    payload = json.dumps({"version": PIPELINE_VERSION, "model": sha256_file(spec.model), "video": sha256_file(video),
                          **spec.settings()}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def reference_detections(spec: DetectorSpec, video: Path) -> dict[str, Any]:
    """{"key", "frames", "width", "height", "detections": [[...] per frame], "computed": bool}."""
    key = reference_key(spec, video)
    with _MEMO_LOCK:
        if key in _MEMO:
            return {**_MEMO[key], "computed": False}
    folder = cache_dir("detection")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.json"
    with file_lock(folder / f"{key}.lock"):
        computed = False
        data = _read_cache(path, key)
        if data is None:
            data = _compute(spec, video, key)
            atomic_write(path, json.dumps(data))
            computed = True
    with _MEMO_LOCK:
        _MEMO[key] = data
    return {**data, "computed": computed}


def _read_cache(path: Path, key: str) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("key") == key and isinstance(data.get("detections"), list) else None


def _compute(spec: DetectorSpec, video: Path, key: str) -> dict[str, Any]:
    import cv2

    detector = Detector(spec)
    detections, width, height = [], 0, 0
    for frame in read_frames(video):
        height, width = frame.shape[:2]
        detections.append(detector.detect(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)))
    return {"key": key, "frames": len(detections), "width": width, "height": height, "detections": detections,
            "model_input": [detector.height, detector.width, str(detector.input_dtype)]}
