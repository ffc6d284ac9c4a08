"""Strict oracle of the Python stages on a board (PyCPU-SG, PyTPU-SG): object detection on a
video, an annotated output video and a detections file.

``vision_detection`` judges what a program left in the work dir against the harness's own
reference pipeline (:mod:`pytest_autopilot.oracles.detection`: the same model on the same frames,
computed once per model and video and cached). One named check per property (the detections
file's in :mod:`pytest_autopilot.oracles.vision_detections`):

``exit_code_0``                  the program finished cleanly (when it ran)
``output_video_exists``          the annotated video is at the requested path
``output_video_decodes``         OpenCV opens it and decodes at least one frame
``frame_count``                  it has exactly the input's number of frames
``resolution``                   and the input's width x height
``boxes_drawn``                  on frames where the reference detects objects, the output
                                 differs visibly from the input along the reference boxes
                                 (a band around each box edge: at least ``min_mark_fraction``
                                 of its pixels changed by more than ``mark_threshold``); at
                                 least ``min_annotated`` of all reference boxes are marked
``labels_drawn``                 (only when the case asks: ``labels_drawn``; judged only when the boxes
                                 are drawn) the label text read (OCR,
                                 :mod:`pytest_autopilot.oracles.vision_labels`) near a sample of
                                 reference boxes names the class the reference finds there
``unannotated_pixels_unchanged`` away from the boxes (and their label area) the frames are the
                                 input's: median over frames of the mean absolute difference
                                 <= ``max_unannotated_change``; text-sized overlays anywhere (a
                                 label, the mAP on a filled background) are left out of it, up
                                 to 8% of the frame; the detail says what it measured and names the likely cause:
                                 most pixels changed (colour channels swapped, frames re-rendered)
                                 or sparse marks away from the objects (boxes drawn elsewhere)
``detections_file``              (only when the case asks for one: ``detections``) the JSON-lines file exists and every line is
                                 ``{"frame": int, "label": str, "score": float, "box": [x1, y1, x2, y2]}``
                                 with a frame index of the input and a sane box
``detections_precision`` / ``detections_recall``   against the reference detections: a
                                 detection matches a reference one of the same frame and label
                                 with IoU >= ``iou`` (greedy one-to-one)
``frame_alignment``              the detections overlap the reference most with no frame shift
                                 (a 1-based or off-by-one frame index still matches at IoU 0.5
                                 when objects move slowly)
``label_agreement``              of the detections overlapping a reference box (IoU >= ``iou``,
                                 any label), the share with the reference's label (catches an
                                 off-by-one label mapping)
``run_info``                     (``run_info`` param) the program's JSON report exists and says
                                 which delegate ran: ``edgetpu`` on a board with the
                                 ``edgetpu`` capability, the CPU fallback ``cpu`` elsewhere
``delegate_requested``           (``run_info``) the program asks for the Edge TPU delegate
                                 (``load_delegate``/``make_interpreter`` with ``libedgetpu``):
                                 a static look at the code, since off a Coral the fallback runs

Inputs are named by their work-dir paths (``model``, ``labels``, ``video``); the oracle reads
the *originals* (the case's assets, or the user-supplied directory of ``external_inputs``),
never the work-dir copies the program could have changed.

params: ``pytest-autopilot oracles vision_detection`` lists each with its type, default and meaning
(from its pydantic model, ``oracles.params.VisionDetectionParams``).

A video whose frame count or resolution differs from the input's is broken: the per-frame checks
after ``frame_count`` are then not judged on it (they fail with that reason, not with a verdict
about one stray frame).

Category: ``runtime_error`` / ``timeout`` / ``resource_limit`` when the program did not finish,
``artifact_missing`` when the video or the detections file is missing or unreadable, else
``semantic_mismatch``. Details are deterministic (they go into repair prompts).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from pytest_autopilot.core.errors import HarnessError
from pytest_autopilot.core.records import Category, Check, Verdict
from pytest_autopilot.oracles import OracleContext, categorised_verdict
from pytest_autopilot.oracles.vision_detections import detection_checks
from pytest_autopilot.oracles.vision_run_info import run_info_checks

_DEFAULTS: dict[str, Any] = {
    "outputs": {"boxes": 0, "classes": 1, "scores": 2, "count": 3},
    "score_threshold": 0.5,
    "label_offset": 0,
    "iou": 0.5,
    "min_precision": 0.9,
    "min_recall": 0.9,
    "min_label_agreement": 0.95,
    "min_annotated": 0.8,
    "mark_threshold": 48,
    "min_mark_fraction": 0.04,
    "max_unannotated_change": 8.0,
    "external_inputs": None,
    "run_info": None,
    "detections": None,
    "labels_drawn": None,
    "output_video": None,
}
_REQUIRED = ("model", "labels", "video")
_ARTIFACT = {"output_video_exists", "output_video_decodes", "detections_file", "run_info"}
_LABEL_ZONE = 32  # pixels above a box (and 120 to its right) where a label text may go
_CHANGED = 16  # a pixel differing by more than this from the input was changed (re-encoding stays below)
_DENSE = 0.3  # this share of changed pixels away from the boxes: the whole frame was altered
_SPARSE_MARKS = 0.002  # this share of pixels marked like a drawn line away from the boxes: boxes elsewhere
# Overlays the prompt asks for without saying where (a label, a score, the mAP on a filled background):
# groups of changed pixels (gaps up to _TEXT_GAP merged) at most _TEXT_HEIGHT tall (or 10% of the
# frame), at most _OVERLAY_SHARE of the frame in all, are left out of the unannotated measure.
_TEXT_GAP = 7
_TEXT_HEIGHT = 64
_OVERLAY_SHARE = 0.08


def _params(raw: dict[str, Any]) -> dict[str, Any]:
    p = {**_DEFAULTS, **raw}
    unknown = set(p) - set(_DEFAULTS) - set(_REQUIRED)
    if unknown:
        raise HarnessError(Category.HARNESS_ERROR, f"vision_detection: unknown params {sorted(unknown)}")
    for key in _REQUIRED:
        if not p.get(key):
            raise HarnessError(Category.HARNESS_ERROR, f"vision_detection: params.{key} is required")
    if set(p["outputs"]) - {"boxes", "classes", "scores", "count"} or not {"boxes", "classes", "scores"} <= set(p["outputs"]):
        raise HarnessError(Category.HARNESS_ERROR, "vision_detection: params.outputs maps boxes, classes, scores (and count) to indices")
    return p


def source_of(ctx: OracleContext, rel: str, external: dict | None) -> Path:
    """The original file laid out at work-dir path ``rel``."""
    if rel in ctx.inputs and isinstance(ctx.inputs[rel], (str, Path)):
        return Path(ctx.inputs[rel])
    asset = ctx.workspace.get(rel)
    if asset is not None and asset in ctx.assets:
        return Path(ctx.assets[asset])
    if external and rel in external.get("workspace", {}):
        from pytest_autopilot.executors.inputs import external_files

        return external_files(external)[rel]
    raise HarnessError(Category.HARNESS_ERROR, f"vision_detection: {rel!r} is not an input of the case (workspace or external_inputs)")


def _verdict(checks: list[Check], execution) -> Verdict:
    return categorised_verdict("vision_detection", checks, _ARTIFACT, execution)


def vision_detection(ctx: OracleContext) -> Verdict:
    from pytest_autopilot.oracles.detection import DetectorSpec, load_labels, reference_detections

    p = _params(ctx.params)
    external = p["external_inputs"]
    model, labels_file, video = (source_of(ctx, p[k], external) for k in ("model", "labels", "video"))
    spec = DetectorSpec(model=model, labels=tuple(load_labels(labels_file)), score_threshold=float(p["score_threshold"]),
                        outputs=dict(p["outputs"]), label_offset=int(p["label_offset"]))
    ref = reference_detections(spec, video)
    if ref["frames"] == 0 or not any(ref["detections"]):
        raise HarnessError(Category.HARNESS_ERROR, f"vision_detection: the reference pipeline finds nothing in {video.name}; check the case")

    checks: list[Check] = []
    execution = ctx.execution
    if execution is not None:
        ok = execution.returncode == 0 and not execution.timed_out
        detail = "" if ok else ("timed out" if execution.timed_out else f"exit code {execution.returncode}")
        checks.append(Check("exit_code_0", ok, detail))
    metrics: dict[str, float] = {}  # graded quality, never feedback
    if p["output_video"]:
        checks += _video_checks(ctx, p, video, ref, list(spec.labels), metrics)
    if p["detections"]:
        checks += detection_checks(_inside(ctx, p["detections"]), p, ref, metrics)
    if p["run_info"]:
        checks += run_info_checks(ctx, p["run_info"])
    if execution is not None:  # the program's whole wall time (start-up included) over the input's frames
        metrics["seconds_per_frame"] = execution.duration_s / ref["frames"]
    verdict = _verdict(checks, execution)
    verdict.metrics.update(metrics)
    return verdict


# ----------------------------------------------------------------------------- the video


def _inside(ctx: OracleContext, rel: str) -> Path | None:
    path = (ctx.workdir / rel).resolve()
    return path if path.is_relative_to(ctx.workdir.resolve()) else None


def _other_videos(ctx: OracleContext, p) -> str:
    """Videos the program wrote elsewhere; never the harness's own inputs (laid out from the case,
    or user-supplied: ``external_inputs``), nor a copy of the input video."""
    rel = p["output_video"]
    inputs = set(ctx.inputs) | set(ctx.workspace) | set((p["external_inputs"] or {}).get("workspace", {})) | {p["video"]}
    found = sorted(str(f.relative_to(ctx.workdir)) for f in ctx.workdir.rglob("*")
                   if f.suffix.lower() in (".mp4", ".avi", ".mov", ".mkv") and f.is_file()
                   and not f.relative_to(ctx.workdir).parts[0].startswith("."))
    found = [f for f in found if f not in inputs and f != rel and not _same_file(ctx.workdir / f, ctx.workdir / p["video"])]
    return f"; a video was written to {', '.join(found[:3])} instead" if found else ""


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()
    except OSError:
        return False


def _video_checks(ctx: OracleContext, p, video: Path, ref, labels: list[str], metrics: dict[str, float]) -> list[Check]:
    import cv2

    from pytest_autopilot.oracles.vision_labels import LabelSampler, require_ocr

    rel = p["output_video"]
    path = _inside(ctx, rel)
    exists = path is not None and path.is_file() and path.stat().st_size > 0
    checks = [Check("output_video_exists", exists, "" if exists else f"{rel} was not written{_other_videos(ctx, p)}")]
    reading = p["labels_drawn"]
    names = ("output_video_decodes", "frame_count", "resolution", "boxes_drawn",
             *(("labels_drawn",) if reading else ()), "unannotated_pixels_unchanged")
    if reading:
        require_ocr()  # a missing OCR is the harness's problem, found before any verdict
    if not exists:
        return checks + [Check(n, False, "no output video") for n in names]
    out_cap, in_cap = cv2.VideoCapture(str(path)), cv2.VideoCapture(str(video))
    try:
        ok, first = out_cap.read()
        if not ok:
            return checks + [Check("output_video_decodes", False, f"OpenCV cannot decode a frame of {rel}")] + \
                [Check(n, False, "the output video does not decode") for n in names[1:]]
        checks.append(Check("output_video_decodes", True, ""))
        size_ok = (first.shape[1], first.shape[0]) == (ref["width"], ref["height"])
        stats = _Marks(p)
        sampler = LabelSampler(ref["detections"], int(reading.get("samples", 16)), stats.threshold) if reading else None
        count, frame = 0, first
        while frame is not None:
            in_ok, in_frame = in_cap.read()
            if size_ok and in_ok and count < len(ref["detections"]):
                stats.add(frame, in_frame, ref["detections"][count])
                if sampler is not None:
                    sampler.add(count, frame, in_frame)
            count += 1
            ok, frame = out_cap.read()
            if not ok:
                frame = None
    finally:
        out_cap.release()
        in_cap.release()
    checks.append(Check("frame_count", count == ref["frames"],
                        "" if count == ref["frames"] else f"{count} frames, the input has {ref['frames']}"))
    checks.append(Check("resolution", size_ok, "" if size_ok else
                        f"{first.shape[1]}x{first.shape[0]}, the input is {ref['width']}x{ref['height']}"))
    if not size_ok:
        return checks + [Check(n, False, "resolution differs from the input") for n in names[3:]]
    if count != ref["frames"]:  # a broken video: frame-by-frame findings on it would mislead
        return checks + [Check(n, False, f"not judged: the output video has {count} of the input's {ref['frames']} "
                               "frames") for n in names[3:]]
    checks.append(stats.boxes_check())
    if sampler is not None and not checks[-1].passed:  # no boxes where the objects are: no labels to read there
        checks.append(Check("labels_drawn", False, "not judged: the reference boxes are not drawn"))
    elif sampler is not None:
        checks.append(sampler.check(labels, int(reading.get("min_read", 3)), float(reading.get("min_share", 0.5))))
    checks.append(stats.background_check())
    if stats.boxes:
        metrics["boxes_matched_ratio"] = stats.marked / stats.boxes
    return checks


class _Marks:
    """Accumulates, frame by frame, how visibly the reference boxes are drawn and how much the
    rest of the frame changed."""

    def __init__(self, p):
        self.threshold = int(p["mark_threshold"])
        self.min_fraction = float(p["min_mark_fraction"])
        self.min_annotated = float(p["min_annotated"])
        self.max_change = float(p["max_unannotated_change"])
        self.boxes = self.marked = 0
        self.off_position = 0  # unmarked boxes with line-like marks close by: drawn, but not where the object is
        self.first_unmarked: int | None = None
        self.frame = -1
        self.changes: list[float] = []
        self.changed_share: list[float] = []  # per frame, of the pixels away from the boxes: changed at all
        self.marked_share: list[float] = []  # ... changed as strongly as a drawn line
        self.overlay_share: list[float] = []  # per frame, of all pixels: in text-sized overlays (left out)

    def add(self, out: np.ndarray, inp: np.ndarray, dets: list[dict]) -> None:
        self.frame += 1
        h, w = inp.shape[:2]
        diff = np.abs(out.astype(np.int16) - inp.astype(np.int16)).max(axis=2)
        strong = diff > self.threshold
        keep = np.ones((h, w), bool)
        for d in dets:
            x1, y1, x2, y2 = d["box"]
            m = max(4.0, 0.12 * min(x2 - x1, y2 - y1))
            ox1, oy1, ox2, oy2 = _clip(x1 - m, y1 - m, x2 + m, y2 + m, w, h)
            band = np.zeros((h, w), bool)
            band[oy1:oy2, ox1:ox2] = True
            ix1, iy1, ix2, iy2 = _clip(x1 + m, y1 + m, x2 - m, y2 - m, w, h)
            if ix2 > ix1 and iy2 > iy1:
                band[iy1:iy2, ix1:ix2] = False
            self.boxes += 1
            if band.any() and strong[band].mean() >= self.min_fraction:
                self.marked += 1
            else:
                self.first_unmarked = self.frame if self.first_unmarked is None else self.first_unmarked
                self.off_position += self._marked_near(strong, band, (x1, y1, x2, y2), w, h)
            zx1, zy1, zx2, zy2 = _clip(x1 - m - 2, y1 - m - _LABEL_ZONE, max(x2 + m, x1 + 120), y2 + m + 2, w, h)
            keep[zy1:zy2, zx1:zx2] = False
            lx1, ly1, lx2, ly2 = _clip(x1 - m - 2, y2, max(x2 + m, x1 + 120), y2 + m + _LABEL_ZONE, w, h)
            keep[ly1:ly2, lx1:lx2] = False  # some put the label under the box
        overlays = _text_overlays((diff > _CHANGED) & keep)
        self.overlay_share.append(float(overlays.mean()))
        keep &= ~overlays
        if keep.any():
            self.changes.append(float(diff[keep].mean()))
            self.changed_share.append(float((diff[keep] > _CHANGED).mean()))
            self.marked_share.append(float(strong[keep].mean()))

    def _marked_near(self, strong: np.ndarray, band: np.ndarray, box, w: int, h: int) -> bool:
        """Line-like marks around the box (within half its size), off its edges."""
        x1, y1, x2, y2 = box
        r = max(8.0, 0.5 * max(x2 - x1, y2 - y1))
        nx1, ny1, nx2, ny2 = _clip(x1 - r, y1 - r, x2 + r, y2 + r, w, h)
        near = np.zeros((h, w), bool)
        near[ny1:ny2, nx1:nx2] = True
        near &= ~band
        return bool(near.any()) and float(strong[near].mean()) >= self.min_fraction / 2

    def _why_unmarked(self) -> str:
        """Why reference boxes were not found drawn: positions off, or nothing drawn near them; and
        marks where the reference finds no object."""
        missing = self.boxes - self.marked
        nothing = missing - self.off_position
        parts = []
        if self.off_position:
            parts.append(f"{self.off_position} have marks close by but not on the box edges (positions off: boxes in "
                         "the wrong place?)")
        if nothing:
            parts.append(f"{nothing} have nothing drawn near them")
        why = f"of the {missing} not drawn, " + " and ".join(parts) if parts else ""
        if self.marked_share and float(np.median(self.marked_share)) >= _SPARSE_MARKS:
            why += (("; " if why else "") + f"line-like marks cover {float(np.median(self.marked_share)):.1%} of a "
                    "frame away from every reference box: boxes where the reference finds nothing, in the wrong place? "
                    "(the model's box is [ymin, xmin, ymax, xmax], normalised to the frame)")
        return why

    def _cause(self, boxes_ok: bool = False) -> str:
        """What the changes away from the reference boxes look like, so the hint fits the failure;
        the box order is suspected only when the boxes are not where the objects are."""
        if not self.changes:
            return ""
        changed = float(np.median(self.changed_share))
        if changed >= _DENSE:
            return (f"{changed:.0%} of those pixels changed: colour channels swapped, frames re-rendered, or "
                    "something larger than a text drawn over them?")
        if float(np.median(self.marked_share)) >= _SPARSE_MARKS:
            if boxes_ok:
                return ("the boxes are where the objects are, but lines or shapes larger than a text overlay were "
                        "drawn elsewhere on the frames")
            return ("marks drawn away from the objects the model detects: boxes in the wrong place? (the model's "
                    "box is [ymin, xmin, ymax, xmax], normalised to the frame)")
        return ""

    def _boxes_ok(self) -> bool:
        return bool(self.boxes) and self.marked / self.boxes >= self.min_annotated

    def boxes_check(self) -> Check:
        if not self.boxes:
            return Check("boxes_drawn", False, "no frame with reference detections was compared")
        share = self.marked / self.boxes
        ok = share >= self.min_annotated
        detail = f"{self.marked}/{self.boxes} reference boxes visibly drawn ({share:.0%}, need {self.min_annotated:.0%})"
        if not ok and self.first_unmarked is not None:
            detail += f"; first unmarked box in frame {self.first_unmarked}"
        if not ok:
            why = self._why_unmarked()
            dense = bool(self.changed_share) and float(np.median(self.changed_share)) >= _DENSE
            said = "away from every reference box" in why  # the sparse-marks hint, said by `why` with its numbers
            cause = self._cause() if dense or not said else ""
            cause = cause or ("the frames away from the boxes are unchanged too: nothing was drawn?"
                              if self.marked == 0 and not self.off_position else "")
            detail += "".join(f"; {part}" for part in (why, cause) if part)
        return Check("boxes_drawn", ok, detail)

    def background_check(self) -> Check:
        if not self.changes:
            return Check("unannotated_pixels_unchanged", True, "no pixel outside the boxes")
        median = float(np.median(self.changes))
        ok = median <= self.max_change
        overlays = float(np.median(self.overlay_share))
        detail = (f"mean absolute change per pixel away from the detected objects' boxes, their labels"
                  f"{' and text-sized overlays (%.1f%% of the frame)' % (100 * overlays) if overlays else ''}: "
                  f"{median:.1f} (median over frames)")
        if not ok:
            cause = self._cause(self._boxes_ok())
            detail += f", max {self.max_change:g}{'; ' + cause if cause else ''}"
        return Check("unannotated_pixels_unchanged", ok, detail)


def _text_overlays(changed: np.ndarray) -> np.ndarray:
    """The pixels of text-sized overlays among ``changed``: each group of changed pixels (letters
    merged across small gaps) no taller than a line of text, smallest first, within a budget of
    the frame's area. A frame changed all over is one group, far taller than text: it stays."""
    import cv2

    h, w = changed.shape
    grouped = cv2.dilate(changed.astype(np.uint8), np.ones((_TEXT_GAP, _TEXT_GAP), np.uint8))
    _, _, stats, _ = cv2.connectedComponentsWithStats(grouped, connectivity=8)
    tallest, budget = max(_TEXT_HEIGHT, 0.1 * h), _OVERLAY_SHARE * h * w
    overlays = np.zeros((h, w), bool)
    for x, y, bw, bh, _ in sorted(stats[1:].tolist(), key=lambda s: s[2] * s[3]):
        if bw * bh > budget:
            break
        if bh <= tallest:
            overlays[y:y + bh, x:x + bw] = True
            budget -= bw * bh
    return overlays


def _clip(x1, y1, x2, y2, w, h) -> tuple[int, int, int, int]:
    return (max(0, int(math.floor(x1))), max(0, int(math.floor(y1))),
            min(w, int(math.ceil(x2))), min(h, int(math.ceil(y2))))
