"""The detections-file checks of ``vision_detection``: the program's JSON-lines detections
against the harness's reference detections (same model, same frames). Besides precision and
recall they name the usual causes of a mismatch -- frame numbers shifted by one, x and y
swapped, an off-by-one label mapping -- so the repair prompt says what to fix.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from pytest_autopilot.core.records import Check
from pytest_autopilot.oracles.detection import iou as box_iou
from pytest_autopilot.oracles.detection import match


def _parse_detections(path: Path, frames: int) -> tuple[list[list[dict]] | None, str]:
    per_frame: list[list[dict]] = [[] for _ in range(frames)]
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"cannot read it ({type(exc).__name__})"
    total = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            return None, f"line {number} is not JSON: {line[:80]!r}"
        if not isinstance(row, dict) or not {"frame", "label", "score", "box"} <= set(row):
            return None, f"line {number} lacks frame/label/score/box: {line[:80]!r}"
        frame, label, score, box = row["frame"], row["label"], row["score"], row["box"]
        if not isinstance(frame, int) or isinstance(frame, bool) or not 0 <= frame < frames:
            return None, f"line {number}: frame {frame!r} is not a frame index 0..{frames - 1}"
        if not isinstance(label, str):
            return None, f"line {number}: label {label!r} is not a string"
        if not isinstance(score, (int, float)) or isinstance(score, bool) or not 0 <= score <= 1:
            return None, f"line {number}: score {score!r} is not a number in [0, 1]"
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                                  and math.isfinite(v) for v in box)):
            return None, f"line {number}: box {box!r} is not [x1, y1, x2, y2]"
        if box[2] < box[0] or box[3] < box[1]:
            return None, f"line {number}: box {box!r} has x2 < x1 or y2 < y1 (expected [x1, y1, x2, y2] in pixels)"
        per_frame[frame].append({"label": label, "score": float(score), "box": [float(v) for v in box]})
        total += 1
    return per_frame, f"{total} detections"


def detection_checks(path: Path | None, p, ref, metrics: dict[str, float] | None = None) -> list[Check]:
    """The detections file at ``path`` (None: outside the work dir) against the reference; its
    precision and recall also go into ``metrics``."""
    rel = p["detections"]
    names = ("detections_precision", "detections_recall", "frame_alignment", "label_agreement")
    if path is None or not path.is_file():
        return [Check("detections_file", False, f"{rel} was not written")] + \
            [Check(n, False, "no detections file") for n in names]
    pred, detail = _parse_detections(path, ref["frames"])
    if pred is None:
        return [Check("detections_file", False, f"{rel}: {detail}")] + [Check(n, False, "unreadable detections file")
                                                                          for n in names]
    checks = [Check("detections_file", True, detail)]
    iou = float(p["iou"])
    tp = n_pred = n_ref = overlaps = same = 0
    for frame_pred, frame_ref in zip(pred, ref["detections"]):
        n_pred += len(frame_pred)
        n_ref += len(frame_ref)
        tp += len(match(frame_pred, frame_ref, iou, use_label=True))
        pairs = match(frame_pred, frame_ref, iou, use_label=False)
        overlaps += len(pairs)
        same += sum(frame_pred[i]["label"] == frame_ref[j]["label"] for i, j in pairs)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_ref if n_ref else 1.0
    if metrics is not None:
        metrics.update(detections_precision=precision, detections_recall=recall)
    hint = _swap_hint(pred, ref["detections"], iou, tp) if n_pred and precision < p["min_precision"] else ""
    checks.append(Check("detections_precision", n_pred > 0 and precision >= p["min_precision"],
                        f"{tp}/{n_pred} detections match the reference ({precision:.2f}, need {p['min_precision']}){hint}"))
    checks.append(Check("detections_recall", recall >= p["min_recall"],
                        f"{tp}/{n_ref} reference detections found ({recall:.2f}, need {p['min_recall']}){hint}"))
    checks.append(_alignment_check(pred, ref["detections"]))
    if overlaps:
        agreement = same / overlaps
        checks.append(Check("label_agreement", agreement >= p["min_label_agreement"],
                            f"{same}/{overlaps} overlapping detections carry the reference's label ({agreement:.2f}, "
                            f"need {p['min_label_agreement']})" + _label_confusion(pred, ref["detections"], iou)))
    else:
        checks.append(Check("label_agreement", False, "no detection overlaps a reference box"))
    return checks


def _alignment_check(pred, ref) -> Check:
    """Frame numbers line up: the detections overlap the reference best without a shift (slow
    motion makes a shifted file still match at IoU 0.5, so compare the total overlap)."""
    def overlap(shift: int) -> float:
        total = 0.0
        for f in range(len(ref)):
            g = f + shift
            if 0 <= g < len(pred):
                total += sum(box_iou(pred[g][i]["box"], ref[f][j]["box"])
                             for i, j in match(pred[g], ref[f], 0.3, use_label=False))
        return total

    scores = {shift: overlap(shift) for shift in (0, -2, -1, 1, 2)}
    best = max(scores, key=lambda k: (scores[k], k == 0))
    n_ref = sum(len(frame) for frame in ref)
    if best == 0 or scores[best] < 1.1 * scores[0] or scores[best] < 0.3 * n_ref:  # no shift explains it
        return Check("frame_alignment", True, "no frame shift lines the detections up better")
    return Check("frame_alignment", False, f"the detections line up best with the reference {abs(best)} frame(s) "
                 f"{'later' if best > 0 else 'earlier'}: frame numbers must be the 0-based index of the frame read")


def _label_confusion(pred, ref, iou) -> str:
    confusion: dict[tuple[str, str], int] = {}
    for frame_pred, frame_ref in zip(pred, ref):
        for i, j in match(frame_pred, frame_ref, iou, use_label=False):
            if frame_pred[i]["label"] != frame_ref[j]["label"]:
                key = (frame_ref[j]["label"], frame_pred[i]["label"])
                confusion[key] = confusion.get(key, 0) + 1
    if not confusion:
        return ""
    top = sorted(confusion.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    return "; e.g. " + ", ".join(f"{want!r} written as {got!r} ({n}x)" for (want, got), n in top)


def _swap_hint(pred, ref, iou, tp) -> str:
    """Name the likely cause when boxes are in another layout ([y1, x1, y2, x2])."""
    swapped = [[{**d, "box": [d["box"][1], d["box"][0], d["box"][3], d["box"][2]]} for d in frame] for frame in pred]
    if all(b[0] <= b[2] and b[1] <= b[3] for frame in swapped for b in (d["box"] for d in frame)):
        if sum(len(match(s, r, iou)) for s, r in zip(swapped, ref)) > 2 * tp + 2:
            return "; the boxes match with x and y swapped: write [x1, y1, x2, y2] (the model gives ymin, xmin, ymax, xmax)"
    return ""
