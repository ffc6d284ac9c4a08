"""The built-in oracles' graded metrics (Verdict.metrics), judged on real answers: MC (model
bytes, agreement with the Keras model, held-out accuracy) and PyCPU-SG vision (boxes matched,
detections precision/recall, seconds per frame). The helpers and fixtures are the oracle
tests' own (imported, not copied)."""

from __future__ import annotations

import pytest

pytest.importorskip("cv2", reason="pip install opencv-python-headless")
pytest.importorskip("ai_edge_litert", reason="pip install ai-edge-litert")

from test_mc_oracles import _case as mc_case  # noqa: E402
from test_mc_oracles import _explain, _judge, _loadable_model  # noqa: E402
from test_pysg import _case as vision_case  # noqa: E402
from test_pysg import cpu, reference_outputs, sandbox  # noqa: E402,F401  (fixtures)

from pytest_autopilot import oracles  # noqa: E402
from pytest_autopilot.core.records import ExecResult  # noqa: E402
from pytest_autopilot.oracles import OracleContext  # noqa: E402


def test_mc_gives_model_bytes_even_for_a_model_it_rejects(tmp_path):
    ctx = _loadable_model(tmp_path)  # the wrong model: its shapes do not fit, so no agreement is measured
    verdict = oracles.get("mc_tflite")(ctx)
    assert not verdict.passed
    assert verdict.metrics == {"model_bytes": float((tmp_path / "model_int8.tflite").stat().st_size)}


def test_mc_reference_gives_its_size_agreement_and_accuracy(sandbox):
    case = mc_case("fruit_int8_paper")
    verdict, models = _judge(sandbox, case, case.solution_path(case.spec.solutions.reference["code"]))
    assert verdict.passed, _explain(verdict)
    (model,) = models.values()
    assert verdict.metrics["model_bytes"] == float(len(model))
    assert 0.95 <= verdict.metrics["agreement"] <= 1.0
    assert 0.0 < verdict.metrics["heldout_accuracy"] <= 1.0
    assert str(verdict.metrics["agreement"]) not in verdict.summary()  # feedback holds failed checks only


def test_vision_reference_gives_matched_boxes_precision_recall_and_seconds_per_frame(reference_outputs, tmp_path):
    import shutil

    case = vision_case("shapes_video")
    shutil.copytree(reference_outputs / "out", tmp_path / "out")
    execution = ExecResult(0, "", "", duration_s=9.0)  # as the executor reports the program's wall time
    verdict = oracles.get("vision_detection")(OracleContext(
        workdir=tmp_path, execution=execution, answer="", params=dict(case.step("code").oracle.params),
        case_dir=case.dir, assets={n: case.asset(n) for n in case.spec.assets}, workspace=dict(case.spec.workspace),
        inputs={d: case.asset(a) for d, a in case.spec.workspace.items()}, board=case.board))
    assert verdict.passed, verdict.summary()
    metrics = verdict.metrics
    assert set(metrics) == {"boxes_matched_ratio", "detections_precision", "detections_recall", "seconds_per_frame"}
    assert 0.8 <= metrics["boxes_matched_ratio"] <= 1.0
    assert metrics["detections_precision"] >= 0.9 and metrics["detections_recall"] >= 0.9
    assert metrics["seconds_per_frame"] == pytest.approx(9.0 / 90)  # the input video has 90 frames
