"""Make the PyCPU-SG / PyTPU-SG stages' offline assets: a tiny object detector trained here on
synthetic scenes, its labels, and a synthetic test video -- nothing downloaded.

Writes, to ``cases/pysg/assets/`` (or ``--out``):

``shapes_detect.tflite``  a small CenterNet-style detector with the interface of the paper's
                          SSD-MobileNet ``detect.tflite``: one uint8 input [1, 128, 128, 3]
                          (RGB, 0..255, quantized) and four float32 outputs, in this order:
                          0 boxes [1, 10, 4] (ymin, xmin, ymax, xmax, normalised 0..1),
                          1 classes [1, 10] (class index as float), 2 scores [1, 10] (0..1,
                          descending), 3 count [1] (number of non-zero scores). Backbone
                          four 3x3 convolutions (stride 8 in all) -> a 16x16 grid of
                          objectness, centre offset, size and class logits; decoding (3x3
                          peak picking, top 10) is inside the model. Full-integer
                          post-training quantization of the network (uint8 input), the
                          decoding in float.
``shapes_labels.txt``     one label per line; class index k is line k (0-based): circle,
                          square, triangle
``shapes.mp4``            320x240, 15 fps, 90 frames (mp4v): 1-3 coloured shapes (red-ish
                          circles, blue-ish squares, green-ish triangles, 22-60 px) moving
                          and bouncing over a textured background; frames 0-9 are empty

Scenes: a vertical/horizontal colour gradient plus blurred noise and a few faint lines, then
shapes with a darker outline. Class colours are fixed per class with jitter, so the colour
order of the input matters (a BGR frame turns circles into squares) -- as with real
detectors, feeding BGR to an RGB model is a bug the oracle must see.

Determinism: numpy generators with fixed seeds for scenes and video; ``keras.utils.set_random_seed``
and op determinism for training. The video is byte-stable for a given OpenCV build; the model
is stable for a given TensorFlow build. The script prints the detector's recall/precision on
held-out scenes (IoU >= 0.5, score >= 0.5) and on the video frames.

Requirements (generation time only): tensorflow-cpu, opencv-python-headless, ai-edge-litert.
Usage: ``python scripts/make_pysg_assets.py [--out DIR] [--only video|model] [--epochs N]``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "cases" / "pysg" / "assets"
LABELS = ["circle", "square", "triangle"]
FRAME_W, FRAME_H = 320, 240
INPUT = 128  # model input side
GRID = 16  # output grid (stride 8)
TOP_K = 10
FPS = 15
FRAMES = 90
EMPTY_FRAMES = 10
# RGB base colour per class (jittered per object)
COLOURS = {0: (215, 40, 40), 1: (40, 70, 215), 2: (40, 185, 60)}


# ----------------------------------------------------------------------------- scenes


def background(rng: np.random.Generator) -> np.ndarray:
    import cv2

    c0 = rng.uniform(60, 200, 3)
    c1 = rng.uniform(60, 200, 3)
    t = np.linspace(0, 1, FRAME_W if rng.random() < 0.5 else FRAME_H)
    grad = c0[None, :] * (1 - t[:, None]) + c1[None, :] * t[:, None]
    if len(t) == FRAME_W:
        img = np.broadcast_to(grad[None, :, :], (FRAME_H, FRAME_W, 3)).copy()
    else:
        img = np.broadcast_to(grad[:, None, :], (FRAME_H, FRAME_W, 3)).copy()
    noise = rng.normal(0, 1, (FRAME_H // 8, FRAME_W // 8, 3)).astype(np.float32)
    noise = cv2.resize(noise, (FRAME_W, FRAME_H), interpolation=cv2.INTER_CUBIC)
    img += noise * rng.uniform(5, 18)
    img += rng.normal(0, 3, img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(rng.integers(0, 4)):
        p1 = tuple(int(v) for v in (rng.integers(0, FRAME_W), rng.integers(0, FRAME_H)))
        p2 = tuple(int(v) for v in (rng.integers(0, FRAME_W), rng.integers(0, FRAME_H)))
        shade = int(rng.integers(40, 220))
        cv2.line(img, p1, p2, (shade, shade, shade), int(rng.integers(1, 3)), cv2.LINE_AA)
    return img


def draw_shape(img: np.ndarray, cls: int, cx: float, cy: float, size: float, colour, angle: float) -> list[float]:
    """Draw one shape (RGB image, in place); returns its box [x1, y1, x2, y2] in pixels."""
    import cv2

    colour = tuple(int(c) for c in colour)
    outline = tuple(int(c * 0.55) for c in colour)
    r = size / 2
    if cls == 0:
        cv2.circle(img, (int(round(cx)), int(round(cy))), int(round(r)), colour, -1, cv2.LINE_AA)
        cv2.circle(img, (int(round(cx)), int(round(cy))), int(round(r)), outline, 2, cv2.LINE_AA)
        box = [cx - r, cy - r, cx + r, cy + r]
    else:
        n = 4 if cls == 1 else 3
        a0 = angle if cls == 1 else -np.pi / 2 + angle * 0.3
        rad = r * (np.sqrt(2) if cls == 1 else 1.15)
        pts = np.array([[cx + rad * np.cos(a0 + 2 * np.pi * i / n), cy + rad * np.sin(a0 + 2 * np.pi * i / n)]
                        for i in range(n)])
        cv2.fillPoly(img, [np.round(pts).astype(np.int32)], colour, cv2.LINE_AA)
        cv2.polylines(img, [np.round(pts).astype(np.int32)], True, outline, 2, cv2.LINE_AA)
        box = [pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()]
    return [max(0.0, box[0]), max(0.0, box[1]), min(FRAME_W - 1.0, box[2]), min(FRAME_H - 1.0, box[3])]


def jitter(rng: np.random.Generator, cls: int) -> tuple[int, int, int]:
    base = np.array(COLOURS[cls], dtype=float)
    return tuple(np.clip(base + rng.normal(0, 14, 3), 0, 255).astype(int))


def random_scene(rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[int, list[float]]]]:
    img = background(rng)
    objects: list[tuple[int, list[float]]] = []
    centres: list[tuple[float, float, float]] = []
    for _ in range(int(rng.integers(0, 4))):
        for _try in range(10):
            size = float(rng.uniform(22, 60))
            cx, cy = float(rng.uniform(size / 2, FRAME_W - size / 2)), float(rng.uniform(size / 2, FRAME_H - size / 2))
            if all(np.hypot(cx - x, cy - y) > (size + s) * 0.6 for x, y, s in centres):
                break
        else:
            continue
        cls = int(rng.integers(0, 3))
        box = draw_shape(img, cls, cx, cy, size, jitter(rng, cls), float(rng.uniform(0, np.pi / 2)))
        centres.append((cx, cy, size))
        objects.append((cls, box))
    return img, objects


def to_input(frame_rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.resize(frame_rgb, (INPUT, INPUT), interpolation=cv2.INTER_LINEAR)


def targets(objects) -> np.ndarray:
    """[GRID, GRID, 1 + 4 + 3 + 1]: objectness, dx, dy, w, h, one-hot class, centre mask."""
    t = np.zeros((GRID, GRID, 9), np.float32)
    for cls, (x1, y1, x2, y2) in objects:
        cx, cy = (x1 + x2) / 2 / FRAME_W * GRID, (y1 + y2) / 2 / FRAME_H * GRID
        i, j = min(int(cy), GRID - 1), min(int(cx), GRID - 1)
        # soft objectness around the centre (CenterNet-style), 1 at the centre cell
        yy, xx = np.mgrid[0:GRID, 0:GRID]
        g = np.exp(-(((xx + 0.5) - cx) ** 2 + ((yy + 0.5) - cy) ** 2) / (2 * 0.6 ** 2))
        t[..., 0] = np.maximum(t[..., 0], g)
        t[i, j, 0] = 1.0
        t[i, j, 1:5] = [cx - j, cy - i, (x2 - x1) / FRAME_W, (y2 - y1) / FRAME_H]
        t[i, j, 5:8] = 0
        t[i, j, 5 + cls] = 1
        t[i, j, 8] = 1
    return t


def dataset(n: int, seed: int):
    rng = np.random.default_rng(seed)
    xs, ys, objs = [], [], []
    for _ in range(n):
        img, objects = random_scene(rng)
        xs.append(to_input(img))
        ys.append(targets(objects))
        objs.append(objects)
    return np.stack(xs), np.stack(ys), objs


# ----------------------------------------------------------------------------- video


def make_video(path: Path, seed: int = 2024) -> list[list[tuple[int, list[float]]]]:
    import cv2

    rng = np.random.default_rng(seed)
    bg = background(rng)
    tracks = []
    for k, cls in enumerate([0, 1, 2, 0]):
        size = float(rng.uniform(28, 56))
        tracks.append({
            "cls": cls, "size": size, "colour": jitter(rng, cls), "angle": float(rng.uniform(0, np.pi / 2)),
            "x": float(rng.uniform(size, FRAME_W - size)), "y": float(rng.uniform(size, FRAME_H - size)),
            "vx": float(rng.choice([-1, 1]) * rng.uniform(1.5, 3.5)),
            "vy": float(rng.choice([-1, 1]) * rng.uniform(1.0, 2.5)),
            "start": EMPTY_FRAMES + 12 * k, "end": FRAMES - (0 if k < 3 else 20),
        })
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (FRAME_W, FRAME_H))
    if not writer.isOpened():
        raise SystemExit("cv2.VideoWriter cannot write mp4v here")
    truth = []
    for f in range(FRAMES):
        frame = bg.copy()
        frame_objects = []
        for tr in tracks:
            if tr["start"] <= f < tr["end"]:
                frame_objects.append((tr["cls"], draw_shape(frame, tr["cls"], tr["x"], tr["y"], tr["size"],
                                                             tr["colour"], tr["angle"])))
                tr["x"] += tr["vx"]
                tr["y"] += tr["vy"]
                r = tr["size"] / 2 + 2
                if not r <= tr["x"] <= FRAME_W - r:
                    tr["vx"] = -tr["vx"]
                if not r <= tr["y"] <= FRAME_H - r:
                    tr["vy"] = -tr["vy"]
                tr["angle"] += 0.03
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        truth.append(frame_objects)
    writer.release()
    return truth


# ----------------------------------------------------------------------------- model


def build_models(tf):
    keras = tf.keras
    inp = keras.Input((INPUT, INPUT, 3), dtype="float32", name="image")
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    for filters, stride in ((16, 2), (32, 2), (48, 2), (64, 1), (64, 1)):
        x = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU(6.0)(x)
    head = keras.layers.Conv2D(8, 1, padding="same", name="head")(x)  # obj, dx, dy, w, h, 3 class logits
    train_model = keras.Model(inp, head)
    return train_model


def loss_fn(tf):
    def loss(y_true, y_pred):
        obj_t, box_t, cls_t, mask = y_true[..., 0], y_true[..., 1:5], y_true[..., 5:8], y_true[..., 8]
        obj_p = tf.sigmoid(y_pred[..., 0])
        # penalty-reduced focal loss (CenterNet)
        pos = tf.cast(tf.equal(obj_t, 1.0), tf.float32)
        neg = 1.0 - pos
        eps = 1e-6
        pos_loss = -tf.math.log(obj_p + eps) * tf.square(1 - obj_p) * pos
        neg_loss = -tf.math.log(1 - obj_p + eps) * tf.square(obj_p) * tf.pow(1 - obj_t, 4) * neg
        n = tf.maximum(tf.reduce_sum(pos, axis=[1, 2]), 1.0)
        obj_loss = tf.reduce_sum(pos_loss + neg_loss, axis=[1, 2]) / n
        box_p = tf.sigmoid(y_pred[..., 1:5])
        box_loss = tf.reduce_sum(tf.reduce_sum(tf.abs(box_p - box_t), -1) * mask, [1, 2]) / n * 5.0
        cls_loss = tf.reduce_sum(tf.nn.softmax_cross_entropy_with_logits(cls_t, y_pred[..., 5:8]) * mask, [1, 2]) / n
        return obj_loss + box_loss + cls_loss
    return loss


def export_model(tf, train_model):
    """The deployable graph: uint8 image -> network -> in-graph decoding -> 4 outputs."""
    keras = tf.keras

    class Decode(keras.layers.Layer):
        def call(self, head):
            obj = tf.sigmoid(head[..., 0])  # [1, G, G]
            cls_prob = tf.nn.softmax(head[..., 5:8], axis=-1)
            score = obj * tf.reduce_max(cls_prob, axis=-1)
            pooled = tf.nn.max_pool2d(score[..., None], 3, 1, "SAME")[..., 0]
            peaks = score * tf.cast(tf.greater_equal(score, pooled), tf.float32)
            flat = tf.reshape(peaks, [1, GRID * GRID])
            top_scores, idx = tf.math.top_k(flat, k=TOP_K)
            rows = tf.cast(idx // GRID, tf.float32)
            cols = tf.cast(idx % GRID, tf.float32)
            box = tf.sigmoid(tf.reshape(head[..., 1:5], [1, GRID * GRID, 4]))
            b = tf.gather(box, idx, axis=1, batch_dims=1)  # [1, K, 4]
            cx = (cols + b[..., 0]) / GRID
            cy = (rows + b[..., 1]) / GRID
            w, h = b[..., 2], b[..., 3]
            boxes = tf.clip_by_value(tf.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=-1), 0.0, 1.0)
            cls_flat = tf.reshape(tf.argmax(head[..., 5:8], axis=-1), [1, GRID * GRID])
            classes = tf.cast(tf.gather(cls_flat, idx, axis=1, batch_dims=1), tf.float32)
            count = tf.reduce_sum(tf.cast(top_scores > 0.0, tf.float32), axis=-1)
            return boxes, classes, top_scores, count

    inp = keras.Input((INPUT, INPUT, 3), batch_size=1, dtype="float32", name="image")
    boxes, classes, scores, count = Decode()(train_model(inp))
    return keras.Model(inp, [boxes, classes, scores, count])


def convert(tf, model, calibration: np.ndarray) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)

    def representative():
        for img in calibration:
            yield [img[None].astype(np.float32)]

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.float32
    return converter.convert()


def output_positions(model_path: Path) -> dict[str, int]:
    """Where each output sits in get_output_details(): the converter orders them its own way;
    output k of the Keras model is named ``...:k`` (boxes 0, classes 1, scores 2, count 3)."""
    import sys

    sys.path.insert(0, str(ROOT))
    from pytest_autopilot.oracles.detection import interpreter

    keras_order = ("boxes", "classes", "scores", "count")
    details = interpreter(model_path).get_output_details()
    return {keras_order[int(d["name"].rsplit(":", 1)[1])]: i for i, d in enumerate(details)}


def evaluate(model_path: Path, frames_rgb, truth, threshold=0.5) -> dict:
    import sys

    sys.path.insert(0, str(ROOT))
    from pytest_autopilot.oracles.detection import DetectorSpec, iou, run_detector_on_frames

    spec = DetectorSpec(model=model_path, labels=LABELS, score_threshold=threshold, outputs=output_positions(model_path))
    dets = run_detector_on_frames(spec, frames_rgb)
    tp = fp = fn = 0
    for frame_dets, objects in zip(dets, truth):
        used = set()
        for d in frame_dets:
            best = max(((iou(d["box"], box), k) for k, (cls, box) in enumerate(objects)
                        if k not in used and LABELS[cls] == d["label"]), default=(0, None))
            if best[0] >= 0.5:
                used.add(best[1])
                tp += 1
            else:
                fp += 1
        fn += len(objects) - len(used)
    return {"recall": round(tp / max(tp + fn, 1), 3), "precision": round(tp / max(tp + fp, 1), 3),
            "objects": tp + fn, "detections": tp + fp}


def train(out: Path, epochs: int, n_train: int) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.keras.utils.set_random_seed(7)
    tf.config.experimental.enable_op_determinism()
    x, y, _ = dataset(n_train, seed=1)
    xv, yv, objs_v = dataset(300, seed=2)
    model = build_models(tf)
    steps = epochs * (n_train // 32)
    schedule = tf.keras.optimizers.schedules.CosineDecay(3e-3, steps)
    model.compile(optimizer=tf.keras.optimizers.Adam(schedule), loss=loss_fn(tf))
    model.fit(x.astype(np.float32), y, validation_data=(xv.astype(np.float32), yv), epochs=epochs,
              batch_size=32, verbose=2, shuffle=True)
    exported = export_model(tf, model)
    tflite = convert(tf, exported, x[:200])
    path = out / "shapes_detect.tflite"
    path.write_bytes(tflite)
    (out / "shapes_labels.txt").write_text("\n".join(LABELS) + "\n")
    frames = [None] * len(xv)
    rng = np.random.default_rng(2)  # re-render the validation scenes at frame resolution
    frames, truth = [], []
    for _ in range(300):
        img, objects = random_scene(rng)
        frames.append(img)
        truth.append(objects)
    print("output positions (case params outputs):", json.dumps(output_positions(path)))
    print("held-out scenes:", json.dumps(evaluate(path, frames, truth)))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--only", choices=("video", "model"))
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--train-scenes", type=int, default=6000)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only != "model":
        truth = make_video(args.out / "shapes.mp4")
        print(f"video: {args.out / 'shapes.mp4'} ({FRAMES} frames, {sum(map(len, truth))} objects)")
    if args.only != "video":
        train(args.out, args.epochs, args.train_scenes)
    if (args.out / "shapes_detect.tflite").exists():
        import cv2

        cap = cv2.VideoCapture(str(args.out / "shapes.mp4"))
        frames = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        truth = make_video(Path("/dev/null"), seed=2024) if False else _video_truth()
        print("video frames:", json.dumps(evaluate(args.out / "shapes_detect.tflite", frames, truth)))


def _video_truth():
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return make_video(Path(tmp) / "v.mp4")


if __name__ == "__main__":
    main()
