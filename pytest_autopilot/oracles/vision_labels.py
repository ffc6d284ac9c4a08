"""``labels_drawn``: the label text drawn near the reference boxes names the reference's class.

A video-only oracle sees boxes, not words: a program that maps class ids to labels off by one
(``labels[class_id - 1]``: every sheep a "horse") draws its boxes in the right places. This check
reads the text with a real OCR (Debian's ``tesseract-ocr`` through ``pytesseract``, an optional
dependency: a missing one is a ``ToolchainMissing`` with the install hint) on a sample of reference
boxes spread over the video: for each, the strip above (and just inside the top of) the box, where
programs put ``cv2.putText``, as the pixels the program changed (the box lines removed). The strips
are stacked into one image, so one tesseract call reads them all. A word read there that is a label
of the label file (exactly, or within a small edit distance) counts: as agreeing when the reference
finds that class at a box whose strip overlaps, else as another class.

Boxes crowd each other (a herd of sheep), so a strip may hold a neighbour's label: the neighbour's
class counts as agreeing. Fewer than ``min_labels_read`` readable labels is no evidence either way:
the check passes and says so. Only a majority naming other classes fails it.
"""

from __future__ import annotations

import difflib
import math
import re
import shutil
from dataclasses import dataclass, field

import numpy as np

from pytest_autopilot.core.errors import ToolchainMissing
from pytest_autopilot.core.records import Check

INSTALL_HINT = ("the labels_drawn check reads label text with tesseract: apt-get install -y tesseract-ocr "
                "&& pip install pytesseract")
_ABOVE, _INSIDE, _WIDTH = 36, 22, 200  # pixels of a strip: above the box top, below it, to the right of x1
_SCALE, _GAP = 3, 16  # strips are enlarged (and smoothed) for the OCR and stacked with white gaps
_LINE = 25  # a run of changed pixels this long is a box edge, not a letter
_MATCH = 0.8  # difflib ratio for a misread label word


def require_ocr():
    """The pytesseract module, when it and the tesseract binary are installed."""
    try:
        import pytesseract
    except ImportError:
        raise ToolchainMissing(INSTALL_HINT) from None
    if shutil.which("tesseract") is None:
        raise ToolchainMissing(INSTALL_HINT)
    return pytesseract


@dataclass
class _Strip:
    frame: int
    box: list[float]
    expected: set[str]  # classes the reference finds at boxes whose strip overlaps this one
    image: np.ndarray | None = None


@dataclass
class LabelSampler:
    """Chooses up to ``samples`` reference boxes spread over the frames, and keeps their strips as
    the frames go by (no second decoding of the video)."""

    detections: list[list[dict]]
    samples: int
    threshold: int
    strips: dict[int, list[_Strip]] = field(default_factory=dict)

    def __post_init__(self):
        frames = [i for i, dets in enumerate(self.detections) if dets]
        if not frames or self.samples <= 0:
            return
        step = max(1, len(frames) // self.samples)
        for n, index in enumerate(frames[::step][: self.samples]):
            dets = sorted(self.detections[index], key=lambda d: -_area(d["box"]))
            box = dets[n % len(dets)]["box"]  # the largest first, then others: different sizes and places
            zone = _zone(box)
            expected = {d["label"] for d in self.detections[index] if _overlap(zone, _zone(d["box"]))}
            self.strips.setdefault(index, []).append(_Strip(index, box, expected))

    def add(self, index: int, out: np.ndarray, inp: np.ndarray) -> None:
        for strip in self.strips.get(index, []):
            h, w = inp.shape[:2]
            x1, y1, x2, y2 = _clip(_zone(strip.box), w, h)
            if x2 - x1 < 8 or y2 - y1 < 8:
                continue
            diff = np.abs(out[y1:y2, x1:x2].astype(np.int16) - inp[y1:y2, x1:x2].astype(np.int16)).max(axis=2)
            strip.image = _text_pixels((diff > self.threshold).astype(np.uint8) * 255)

    def check(self, labels: list[str], min_read: int, min_share: float) -> Check:
        sampled = [s for group in self.strips.values() for s in group]
        read = [s for s in sampled if s.image is not None]
        words = _ocr([s.image for s in read]) if read else []
        vocabulary = sorted({label for label in labels if label and label != "???"}, key=len, reverse=True)
        agree, other = [], []
        for strip, text in zip(read, words):
            found = _labels_in(text, vocabulary)
            if not found:
                continue
            (agree if found & strip.expected else other).append((strip, sorted(found - strip.expected)))
        total = len(agree) + len(other)
        if total < min_read:
            return Check("labels_drawn", True, f"label text read near {total} of {len(sampled)} sampled reference boxes: "
                                               f"too few to judge (need {min_read})")
        share = len(agree) / total
        detail = (f"{len(agree)}/{total} labels read near sampled reference boxes name the class the reference finds "
                  f"there ({share:.0%}, need {min_share:.0%})")
        if share >= min_share:
            return Check("labels_drawn", True, detail)
        strip, found = other[0]
        x1, y1, x2, y2 = (int(round(v)) for v in strip.box)
        expected = " or ".join(repr(e) for e in sorted(strip.expected))
        return Check("labels_drawn", False, f"{detail}; e.g. frame {strip.frame}: label {found[0]!r} drawn at the box "
                     f"[{x1}, {y1}, {x2}, {y2}] where the reference finds {expected}: are class ids mapped to the label "
                     "file's lines with an offset?")


def _area(box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def _zone(box) -> tuple[float, float, float, float]:
    x1, y1 = box[0], box[1]
    return x1 - 6, y1 - _ABOVE, max(box[2], x1 + _WIDTH), y1 + _INSIDE


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _clip(zone, w, h) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = zone
    return max(0, math.floor(x1)), max(0, math.floor(y1)), min(w, math.ceil(x2)), min(h, math.ceil(y2))


def _text_pixels(mask: np.ndarray) -> np.ndarray | None:
    """The changed pixels without long straight runs (box edges), dark on white, enlarged and smoothed
    (tesseract misreads blocky pixels); None when nothing is left."""
    import cv2

    lines = cv2.bitwise_or(
        cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (_LINE, 1))),
        cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, _LINE))))
    text = cv2.subtract(mask, cv2.dilate(lines, np.ones((3, 3), np.uint8)))
    if int(np.count_nonzero(text)) < 12:
        return None
    big = cv2.resize(255 - text, None, fx=_SCALE, fy=_SCALE, interpolation=cv2.INTER_LINEAR)
    return cv2.threshold(cv2.GaussianBlur(big, (5, 5), 0), 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)[1]


def _ocr(images: list[np.ndarray]) -> list[str]:
    """The text of each image, from one tesseract call over the images stacked with gaps."""
    pytesseract = require_ocr()
    width = max(img.shape[1] for img in images) + 2 * _GAP
    rows, spans, top = [], [], _GAP
    rows.append(np.full((_GAP, width), 255, np.uint8))
    for img in images:
        padded = np.full((img.shape[0], width), 255, np.uint8)
        padded[:, _GAP:_GAP + img.shape[1]] = img
        rows += [padded, np.full((_GAP, width), 255, np.uint8)]
        spans.append((top, top + img.shape[0]))
        top += img.shape[0] + _GAP
    sheet = np.vstack(rows)
    data = pytesseract.image_to_data(sheet, config="--psm 6", output_type=pytesseract.Output.DICT)
    texts = [[] for _ in images]
    for word, y, hgt in zip(data["text"], data["top"], data["height"]):
        if not word.strip():
            continue
        middle = y + hgt / 2
        for i, (start, end) in enumerate(spans):
            if start - _GAP / 2 <= middle < end + _GAP / 2:
                texts[i].append(word)
                break
    return [" ".join(t) for t in texts]


def _labels_in(text: str, vocabulary: list[str]) -> set[str]:
    """The label-file entries named in ``text`` (exactly, or one misread word close to a one-word label)."""
    words = re.sub(r"[^a-z ]+", " ", text.lower()).split()
    joined = f" {' '.join(words)} "
    found = {label for label in vocabulary if f" {label.lower()} " in joined}
    single = [label for label in vocabulary if " " not in label]
    for word in words:
        if len(word) >= 3 and not any(word in f.lower().split() for f in found):
            close = difflib.get_close_matches(word, single, n=1, cutoff=_MATCH)
            found.update(close)
    return found
