"""sheeps_paper_faithful asks for label texts and the "calculated mAP" on the frames and never
says where (issue 22). ``unannotated_pixels_unchanged`` must accept such text-sized overlays
anywhere -- an mAP on a filled background box scored 15.8 and failed -- while still catching
real damage to the frame, and its detail must say what it measured, not blame the box order when
the boxes are right. Real videos, the real reference detector and the case's own oracle params;
the paper's inputs are used when ../shared/paper-assets/detection has them, else the tests skip."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pytest_autopilot import oracles
from pytest_autopilot.cases.spec import load_case
from pytest_autopilot.oracles import OracleContext, detection

ROOT = Path(__file__).resolve().parents[2]
CASE_FILE = ROOT / "cases/pysg/sheeps_paper_faithful.yaml"
ASSETS = ROOT.parent / "shared" / "paper-assets" / "detection"
OUTPUT = "results/object_detection/test_results/sheeps_detections.mp4"


@pytest.fixture(scope="module")
def reference():
    if not all((ASSETS / f).is_file() for f in ("detect.tflite", "labelmap.txt", "sheeps.mp4")):
        pytest.skip(f"the paper's detection assets are not at {ASSETS}")
    spec = detection.DetectorSpec(ASSETS / "detect.tflite", tuple(detection.load_labels(ASSETS / "labelmap.txt")))
    return detection.reference_detections(spec, ASSETS / "sheeps.mp4")


def _render(path: Path, ref, extra) -> Path:
    """The input with every reference box and its label drawn as the reference program does, then ``extra(frame)``."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 24, (ref["width"], ref["height"]))
    for frame, dets in zip(detection.read_frames(ASSETS / "sheeps.mp4"), ref["detections"]):
        for d in dets:
            x1, y1, x2, y2 = (int(v) for v in d["box"])
            cv2.rectangle(frame, (x1, y1), (x2, y2), (10, 255, 0), 2)
            cv2.putText(frame, d["label"], (x1, max(y1 - 7, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (10, 255, 0), 1)
        extra(frame)
        writer.write(frame)
    writer.release()
    return path


def _map_on_filled_background(frame) -> None:
    import cv2

    (w, h), base = cv2.getTextSize("mAP: 0.87", cv2.FONT_HERSHEY_SIMPLEX, 0.7, 2)
    cv2.rectangle(frame, (0, 0), (w + 12, h + base + 12), (0, 0, 0), cv2.FILLED)
    cv2.putText(frame, "mAP: 0.87", (6, h + 6), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2)


def _map_at_the_bottom(frame) -> None:
    import cv2

    height = frame.shape[0]
    cv2.rectangle(frame, (0, height - 40), (frame.shape[1], height), (40, 40, 40), cv2.FILLED)
    cv2.putText(frame, "mean average precision: 0.87", (8, height - 14), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 255), 2)


def _shapes_elsewhere(frame) -> None:
    """A filled block far taller than a line of text, where no object is: damage, not an overlay."""
    import cv2

    cv2.rectangle(frame, (30, 40), (330, 170), (0, 0, 255), cv2.FILLED)  # above the sheep


def _darkened(frame) -> None:
    frame[:] = frame // 2


def _verdict(tmp_path: Path, video: Path):
    case = load_case(CASE_FILE, ROOT / "prompts", ROOT / "hardware")
    (tmp_path / OUTPUT).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(video, tmp_path / OUTPUT)
    ctx = OracleContext(workdir=tmp_path, execution=None, answer="", params=dict(case.step("code").oracle.params),
                        case_dir=case.dir, assets={n: case.asset(n) for n in case.spec.assets},
                        workspace=dict(case.spec.workspace), board=case.board)
    return {c.name: c for c in oracles.get("vision_detection")(ctx).checks}


@pytest.fixture(autouse=True)
def _assets_env(monkeypatch):
    monkeypatch.setenv("AUTOPILOT_DETECTION_ASSETS", str(ASSETS))


@pytest.mark.parametrize("overlay", [_map_on_filled_background, _map_at_the_bottom], ids=["corner", "bottom-bar"])
def test_a_text_overlay_anywhere_is_accepted(reference, tmp_path, overlay):
    checks = _verdict(tmp_path, _render(tmp_path / "video.mp4", reference, overlay))
    check = checks["unannotated_pixels_unchanged"]
    assert check.passed and checks["boxes_drawn"].passed, check.detail
    assert "text-sized overlays" in check.detail  # it says what it left out


def test_damage_beyond_text_is_still_caught_and_the_hint_names_what_was_measured(reference, tmp_path):
    shapes = _verdict(tmp_path / "a", _render(tmp_path / "shapes.mp4", reference, _shapes_elsewhere))
    check = shapes["unannotated_pixels_unchanged"]
    assert not check.passed and shapes["boxes_drawn"].passed
    assert check.detail.startswith("mean absolute change per pixel away from the detected objects' boxes"), check.detail
    assert "larger than a text" in check.detail and "ymin" not in check.detail  # the boxes are right: no box-order hint
    dark = _verdict(tmp_path / "b", _render(tmp_path / "dark.mp4", reference, _darkened))
    assert not dark["unannotated_pixels_unchanged"].passed, dark["unannotated_pixels_unchanged"].detail
