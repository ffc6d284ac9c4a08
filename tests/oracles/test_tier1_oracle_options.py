"""What the tier-1 cases needed from the built-in oracles (issue 23): ``mc_tflite``'s
``int8_weights`` (int8 weights, any bias: dynamic-range quantization), and ``vision_detection``
judging a detections file alone (no ``output_video``) on one image read as a one-frame video."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from pytest_autopilot.oracles.mc_ops import Graph, Op, weights_check
from pytest_autopilot.oracles.params import VisionDetectionParams

ASSETS = Path(__file__).parents[2] / "cases/pysg/assets"


def _graph(weight: str, bias: str) -> Graph:
    fc = Op(index=0, name="FULLY_CONNECTED", builtin=True, inputs=(0, 1, 2), outputs=(3,))
    return Graph(ops=(fc,), tensor_types={0: "float32", 1: weight, 2: bias, 3: "float32"}, inputs=(0,), outputs=(3,))


def test_int8_weights_accepts_a_float_bias_where_integer_weights_does_not():
    hybrid = _graph("int8", "float32")  # what dynamic-range quantization writes
    assert weights_check(hybrid, integer_bias=False).passed
    assert weights_check(hybrid, integer_bias=False).name == "int8_weights"
    assert not weights_check(hybrid).passed
    float_model = _graph("float32", "float32")
    check = weights_check(float_model, integer_bias=False)
    assert not check.passed and "op 0 FULLY_CONNECTED takes float32 weights" in check.detail


def test_vision_params_need_an_output_video_or_a_detections_file():
    base = {"model": "m.tflite", "labels": "l.txt", "video": "media/a.png"}
    assert VisionDetectionParams.model_validate({**base, "detections": "out/d.jsonl"}).output_video is None
    with pytest.raises(ValidationError, match="give output_video, detections or both"):
        VisionDetectionParams.model_validate(base)


def test_an_image_is_read_as_one_frame():
    pytest.importorskip("cv2")
    from pytest_autopilot.oracles.detection import read_frames

    frames = list(read_frames(ASSETS / "shapes_frame.png"))
    assert len(frames) == 1 and frames[0].shape == (240, 320, 3)
    assert list(read_frames(ASSETS / "missing.png")) == []
