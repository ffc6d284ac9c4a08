"""PyCPU-SG and PyTPU-SG: the offline assets (synthetic video, tiny detector), the harness's
reference detection pipeline and its cache, the vision_detection oracle check by check, and
each case's reference (and one silent failure) through the real loop -- locally in the
sandbox (PyCPU-SG) and over SSH to a real sshd on 127.0.0.1 (PyTPU-SG); the shipped self-test
judges every other known-bad solution. The paper-faithful
cases run when the paper's assets are beside the repository (../shared/paper-assets/detection)
and skip with the reason otherwise; the Coral case runs only with AUTOPILOT_CORAL=1 (marker coral).

Run: ``.venv/bin/python -m pytest tests/test_pysg.py -q -p no:cacheprovider``
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from project_registries import project_conftest, project_registries
from sshd_plugin import remote_shell

from pytest_autopilot import oracles
from pytest_autopilot.cases.prompts import render
from pytest_autopilot.cases.spec import Case, load_case
from pytest_autopilot.core.errors import ToolchainMissing
from pytest_autopilot.core.records import Attempt, Category
from pytest_autopilot.executors.inputs import with_external_inputs
from pytest_autopilot.executors.local import PythonExecutor
from pytest_autopilot.executors.sandbox import Limits, Sandbox
from pytest_autopilot.executors.ssh import RemoteExecutor, SSHTargets
from pytest_autopilot.llm.standin import answer_text, scripted_solution
from pytest_autopilot.loop.repair import Answer, LoopSettings, RepairLoop
from pytest_autopilot.oracles import OracleContext, detection

pytest.importorskip("cv2", reason="pip install opencv-python-headless")
pytest.importorskip("ai_edge_litert", reason="pip install ai-edge-litert")

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "cases" / "pysg"
PROMPTS = ROOT / "prompts"
HARDWARE = ROOT / "hardware"
ASSETS = CASES / "assets"
GENERATOR = ROOT / "scripts" / "make_pysg_assets.py"
PAPER_ASSETS = ROOT.parent / "shared" / "paper-assets" / "detection"
PAPER_ENV = "AUTOPILOT_DETECTION_ASSETS"
PAPER_FILES = project_conftest().PAPER_FILES
CASE_NAMES = ["shapes_video", "shapes_video_edgetpu", "sheeps_paper", "sheeps_paper_coral"]


def _case(name: str) -> Case:
    return load_case(CASES / f"{name}.yaml", PROMPTS, HARDWARE)


def _limits(case: Case, **changes) -> Limits:
    spec = case.spec
    return Limits().replace(timeout_s=spec.timeouts.run_s, cpu_s=spec.limits.cpu_s, memory_mb=spec.limits.memory_mb,
                            file_size_mb=spec.limits.file_size_mb, processes=spec.limits.processes).replace(**changes)


def judge(case: Case, toolchain, solution: Path | None = None, code: str | None = None, **limits) -> Attempt:
    """One attempt through the real repair loop (one attempt allowed), as the self-test runs it."""
    text = answer_text(solution) if solution is not None else f"```python\n{code}\n```\n"
    loop = RepairLoop(case, lambda messages, meta: Answer(text), with_external_inputs(case, toolchain),
                      LoopSettings(1, case.spec.repair.error_chars, "first", _limits(case, **limits)))
    return loop.run().attempts[-1]


def _explain(attempt: Attempt) -> str:
    lines = [f"{'ok ' if c.passed else 'BAD'} {c.name}: {c.detail[:300]}" for c in attempt.strict.checks]
    if attempt.execution is not None:
        lines.append(f"exit {attempt.execution.returncode}; stderr tail: {attempt.execution.stderr[-800:]}")
    return "\n".join(lines)


def _solutions(case: Case, *bad_stems: str) -> list[tuple[str, Path, str | None]]:
    """The reference and the named known-bad solutions (the self-test judges all of them)."""
    out = [("reference", case.solution_path(case.spec.solutions.reference["code"]), None)]
    out += [(Path(b.file).stem, case.solution_path(b.file), b.caught_by)
            for b in case.spec.solutions.bad.get("code", []) if Path(b.file).stem in bad_stems]
    assert len(out) == 1 + len(bad_stems), bad_stems
    return out


def _assert_judged(attempt: Attempt, expected_check: str | None, label: str) -> None:
    if expected_check is None:
        assert attempt.strict_passed, f"{label} rejected:\n{_explain(attempt)}"
        return
    assert not attempt.strict_passed, f"{label} accepted:\n{_explain(attempt)}"
    failed = {c.name for c in attempt.strict.failed_checks}
    assert expected_check in failed, f"{label}: expected {expected_check} to fail, failed {sorted(failed)}\n{_explain(attempt)}"
    assert attempt.category in Category.ALL


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Sandbox:
    return Sandbox(base_dir=tmp_path_factory.mktemp("pysg-sandbox"))


@pytest.fixture(scope="module")
def cpu(sandbox) -> PythonExecutor:
    return PythonExecutor(sandbox)


@pytest.fixture(scope="module")
def remote(sshd, sandbox):
    tc = RemoteExecutor(sshd.target("loopback_ssh", python=sys.executable), sandbox)
    yield tc
    tc.close()


@pytest.fixture
def ssh_targets(sandbox):
    """What a session keeps in its shared resources for ``executor: ssh``, closed at its end."""
    targets = SSHTargets(sandbox)
    yield targets
    targets.close()


@pytest.fixture
def paper_assets(monkeypatch):
    if not all((PAPER_ASSETS / f).is_file() for f in PAPER_FILES):
        pytest.skip(f"the paper's detection assets are not at {PAPER_ASSETS} (detect.tflite, labelmap.txt, sheeps.mp4)")
    monkeypatch.setenv(PAPER_ENV, str(PAPER_ASSETS))
    return PAPER_ASSETS


def _generator():
    spec = importlib.util.spec_from_file_location("make_pysg_assets", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- cases, prompts, assets


@pytest.mark.parametrize("name", CASE_NAMES)
def test_case_loads_and_context_agrees_with_oracle_params(name):
    case = _case(name)
    ctx, params = case.spec.context, case.step("code").oracle.params
    assert (ctx["model_file"], ctx["labels_file"], ctx["video_file"]) == (params["model"], params["labels"], params["video"])
    assert (ctx["output_video"], ctx["detections_file"]) == (params["output_video"], params["detections"])
    assert ctx["score_threshold"] == params["score_threshold"] and ctx["label_offset"] == params["label_offset"]
    assert {o["name"]: o["index"] for o in ctx["outputs"]} == params["outputs"]
    assert ctx.get("external_inputs") == params.get("external_inputs")
    assert ctx["time_limit_s"] == case.spec.timeouts.run_s
    if ctx["accelerator"] == "edgetpu":
        assert case.spec.stage == "PyTPU-SG" and case.spec.executor == "ssh" and case.board.access.ssh
        assert params["run_info"]["path"] == ctx["run_info_file"]
    else:
        assert case.spec.stage == "PyCPU-SG" and "run_info" not in params
    from pytest_autopilot.oracles.vision import _params

    _params(params)  # no unknown params
    for rep in range(1, len(case.spec.standin) + 1):
        for attempt in range(1, 6):
            assert scripted_solution(case, "code", rep, attempt).is_file()


@pytest.mark.parametrize("name", CASE_NAMES)
def test_prompt_gives_every_input_the_task_needs(name):
    case = _case(name)
    ctx = case.spec.context
    prompt = render(PROMPTS, case.step("code").prompt, {**ctx, "description": case.spec.description,
                                                        "language": "python"})
    needed = [ctx["model_file"], ctx["labels_file"], ctx["video_file"], ctx["output_video"], ctx["detections_file"],
              f"[1, {ctx['input_height']}, {ctx['input_width']}, 3]", f"dtype {ctx['input_dtype']}",
              f"at least {ctx['score_threshold']}", "BGR", "RGB", "0-based frame index", "[x1, y1, x2, y2]",
              "mp4v", "exactly the input's number of frames", f"within {ctx['time_limit_s']} seconds", ctx["video_info"]]
    needed += [f"output {o['index']}: {o['name']}" for o in ctx["outputs"]]
    if ctx["accelerator"] == "edgetpu":
        needed += [ctx["edgetpu_model_file"], "libedgetpu.so.1", "fall back", ctx["run_info_file"], '"delegate"']
    if ctx["skip_label"]:
        needed.append(f"`{ctx['skip_label']}`")
    missing = [n for n in needed if n not in prompt]
    assert not missing, f"prompt of {name} lacks {missing}:\n{prompt}"
    assert "{{" not in prompt and "path/to" not in prompt


def _decoded_frames(path: Path) -> list:
    import cv2

    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame.astype("int16"))
    capture.release()
    return frames


def test_committed_video_is_what_the_generator_makes(tmp_path):
    # Compared as decoded pictures: the bytes carry the encoder's version (opencv-python's bundled
    # libavformat) and change with every opencv wheel, while the frames the oracle's truth describes do not.
    gen = _generator()
    truth = gen.make_video(tmp_path / "shapes.mp4")
    made, committed = _decoded_frames(tmp_path / "shapes.mp4"), _decoded_frames(ASSETS / "shapes.mp4")
    assert len(made) == len(committed) == gen.FRAMES
    worst = max(float(abs(a - b).mean()) for a, b in zip(made, committed))
    assert worst < 2.0, (f"cases/pysg/assets/shapes.mp4 differs from scripts/make_pysg_assets.py's output "
                         f"(mean abs pixel difference up to {worst:.1f}); regenerate and commit it")
    assert len(truth) == gen.FRAMES and not any(truth[:gen.EMPTY_FRAMES]) and all(truth[gen.EMPTY_FRAMES + 1:70])
    assert (ASSETS / "shapes_labels.txt").read_text().split() == gen.LABELS


def test_committed_model_has_the_documented_interface():
    it = detection.interpreter(ASSETS / "shapes_detect.tflite")
    (inp,) = it.get_input_details()
    assert list(inp["shape"]) == [1, 128, 128, 3] and inp["dtype"].__name__ == "uint8"
    # output k of the Keras model is named ...:k -- boxes 0, classes 1, scores 2, count 3
    keras_order = {0: "boxes", 1: "classes", 2: "scores", 3: "count"}
    positions = {keras_order[int(d["name"].rsplit(":", 1)[1])]: i for i, d in enumerate(it.get_output_details())}
    assert positions == _case("shapes_video").step("code").oracle.params["outputs"]
    shapes = {name: list(it.get_output_details()[i]["shape"]) for name, i in positions.items()}
    assert shapes == {"boxes": [1, 10, 4], "classes": [1, 10], "scores": [1, 10], "count": [1]}


def test_reference_pipeline_finds_the_shapes_of_the_video(tmp_path):
    """The tiny detector is good enough that the task is meaningful: against the video's ground
    truth it finds most shapes with the right label."""
    gen = _generator()
    truth = gen.make_video(tmp_path / "v.mp4")
    frames = [__import__("cv2").cvtColor(f, 4) for f in detection.read_frames(ASSETS / "shapes.mp4")]  # BGR2RGB
    scores = gen.evaluate(ASSETS / "shapes_detect.tflite", frames, truth)
    assert scores["recall"] >= 0.85 and scores["precision"] >= 0.85, scores


# ----------------------------------------------------------------------------- the reference cache


def _spec(case: Case) -> tuple[detection.DetectorSpec, Path]:
    p = case.step("code").oracle.params
    labels = detection.load_labels(case.asset("labels"))
    return detection.DetectorSpec(case.asset("model"), tuple(labels), p["score_threshold"], dict(p["outputs"])), \
        case.asset("video")


def test_reference_is_computed_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOPILOT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(detection, "_MEMO", {})
    spec, video = _spec(_case("shapes_video"))
    first = detection.reference_detections(spec, video)
    assert first["computed"] and first["frames"] == 90 and (first["width"], first["height"]) == (320, 240)
    assert detection.reference_detections(spec, video)["computed"] is False  # in memory
    monkeypatch.setattr(detection, "_MEMO", {})
    again = detection.reference_detections(spec, video)  # from the file cache
    assert again["computed"] is False and again["detections"] == first["detections"]
    files = sorted(p.name for p in (tmp_path / "cache" / "detection").glob("*.json"))
    assert files == [f"{first['key']}.json"]
    other = detection.reference_detections(detection.DetectorSpec(spec.model, spec.labels, 0.6, spec.outputs), video)
    assert other["computed"] and other["key"] != first["key"]  # the key covers the settings


def test_parallel_workers_compute_the_reference_once(tmp_path):
    script = ("import json, sys\nsys.path.insert(0, sys.argv[1])\nfrom pathlib import Path\n"
              "from pytest_autopilot.oracles import detection\nfrom pytest_autopilot.cases.spec import load_case\n"
              "case = load_case(Path(sys.argv[2]), Path(sys.argv[3]))\np = case.step('code').oracle.params\n"
              "spec = detection.DetectorSpec(case.asset('model'), tuple(detection.load_labels(case.asset('labels'))),"
              " p['score_threshold'], dict(p['outputs']))\n"
              "print(json.dumps(detection.reference_detections(spec, case.asset('video'))['computed']))\n")
    env = {**os.environ, "AUTOPILOT_CACHE_DIR": str(tmp_path / "cache")}
    args = [sys.executable, "-c", script, str(ROOT), str(CASES / "shapes_video.yaml"), str(PROMPTS)]
    procs = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for _ in range(3)]
    computed = [json.loads(p.communicate(timeout=120)[0].strip().splitlines()[-1]) for p in procs]
    assert sorted(computed) == [False, False, True]


# ----------------------------------------------------------------------------- the oracle, check by check


@pytest.fixture(scope="module")
def reference_outputs(cpu, tmp_path_factory):
    """The reference solution's outputs (video, detections), kept for oracle unit tests."""
    case = _case("shapes_video")
    keep = tmp_path_factory.mktemp("reference-outputs")
    workdir = cpu.sandbox.new_workdir()
    try:
        code = case.solution_path("shapes_video/solutions/reference.py").read_text()
        files = {d: case.asset(a) for d, a in case.spec.workspace.items()}
        result = cpu.execute(code, workdir, files, _limits(case))
        assert result.returncode == 0, result.stderr[-2000:]
        shutil.copytree(workdir / "out", keep / "out")
    finally:
        cpu.sandbox.cleanup(workdir)
    return keep


def _oracle(case: Case, workdir: Path, answer: str = ""):
    return oracles.get("vision_detection")(OracleContext(
        workdir=workdir, execution=None, answer=answer, params=dict(case.step("code").oracle.params),
        case_dir=case.dir, assets={n: case.asset(n) for n in case.spec.assets}, workspace=dict(case.spec.workspace),
        inputs={d: case.asset(a) for d, a in case.spec.workspace.items()}, board=case.board))


def _variant(reference_outputs: Path, tmp_path: Path) -> Path:
    shutil.copytree(reference_outputs / "out", tmp_path / "out")
    return tmp_path


def _rewrite_detections(workdir: Path, change) -> None:
    path = workdir / "out/detections.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(r) + "\n" for r in change(rows)))


def _rewrite_video(workdir: Path, change, drop_last: int = 0) -> None:
    import cv2

    path = workdir / "out/annotated.mp4"
    frames = list(detection.read_frames(path))
    frames = frames[:len(frames) - drop_last]
    h, w = change(frames[0]).shape[:2]
    writer = cv2.VideoWriter(str(path) + ".tmp.mp4", cv2.VideoWriter_fourcc(*"mp4v"), 15, (w, h))
    for frame in frames:
        writer.write(change(frame))
    writer.release()
    os.replace(str(path) + ".tmp.mp4", path)


def test_oracle_accepts_the_reference_outputs_and_records_every_check(reference_outputs, tmp_path):
    verdict = _oracle(_case("shapes_video"), _variant(reference_outputs, tmp_path))
    assert verdict.passed, verdict.summary()
    assert [c.name for c in verdict.checks] == [
        "output_video_exists", "output_video_decodes", "frame_count", "resolution", "boxes_drawn",
        "unannotated_pixels_unchanged", "detections_file", "detections_precision", "detections_recall",
        "frame_alignment", "label_agreement"]


@pytest.mark.parametrize("mutation, check, detail", [
    ("frames_one_based", "frame_alignment", "1 frame(s) later: frame numbers must be the 0-based index"),
    ("xy_swapped", "detections_precision", "x and y swapped"),
    ("no_detections", "detections_recall", "0/"),
    ("malformed_line", "detections_file", "line 2 is not JSON"),
    ("frame_out_of_range", "detections_file", "is not a frame index"),
    ("labels_rotated", "label_agreement", "written as"),
    ("rgb_written", "unannotated_pixels_unchanged", "colour channels swapped"),
    ("last_frames_dropped", "frame_count", "85 frames, the input has 90"),
    ("half_size", "resolution", "160x120, the input is 320x240"),
    ("video_elsewhere", "output_video_exists", "a video was written to out/result.mp4 instead"),
])
def test_oracle_rejects_each_defect_with_a_precise_detail(reference_outputs, tmp_path, mutation, check, detail):
    import cv2

    case = _case("shapes_video")
    workdir = _variant(reference_outputs, tmp_path)
    labels = ["circle", "square", "triangle"]
    if mutation == "frames_one_based":
        _rewrite_detections(workdir, lambda rows: [{**r, "frame": r["frame"] + 1} for r in rows if r["frame"] < 89])
    elif mutation == "xy_swapped":
        _rewrite_detections(workdir, lambda rows: [{**r, "box": [r["box"][1], r["box"][0], r["box"][3], r["box"][2]]}
                                                   for r in rows])
    elif mutation == "no_detections":
        _rewrite_detections(workdir, lambda rows: [])
    elif mutation == "malformed_line":
        path = workdir / "out/detections.jsonl"
        lines = path.read_text().splitlines()
        path.write_text(lines[0] + "\n{'frame': 1}\n")
    elif mutation == "frame_out_of_range":
        _rewrite_detections(workdir, lambda rows: rows + [{**rows[0], "frame": 90}])
    elif mutation == "labels_rotated":
        _rewrite_detections(workdir, lambda rows: [{**r, "label": labels[(labels.index(r["label"]) + 1) % 3]} for r in rows])
    elif mutation == "rgb_written":
        _rewrite_video(workdir, lambda f: cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
    elif mutation == "last_frames_dropped":
        _rewrite_video(workdir, lambda f: f, drop_last=5)
    elif mutation == "half_size":
        _rewrite_video(workdir, lambda f: cv2.resize(f, (160, 120)))
    elif mutation == "video_elsewhere":
        os.replace(workdir / "out/annotated.mp4", workdir / "out/result.mp4")
    verdict = _oracle(case, workdir)
    assert not verdict.passed
    failed = {c.name: c.detail for c in verdict.failed_checks}
    assert check in failed and detail in failed[check], failed


def test_oracle_reads_the_original_inputs_not_the_work_dir_copies(reference_outputs, tmp_path):
    """A program that overwrites its model copy cannot change what the oracle compares with."""
    workdir = _variant(reference_outputs, tmp_path)
    (workdir / "model").mkdir()
    (workdir / "model/shapes_detect.tflite").write_bytes(b"not a model")
    (workdir / "model/labels.txt").write_text("a\nb\nc\n")
    assert _oracle(_case("shapes_video"), workdir).passed


def test_oracle_setup_errors_are_not_verdicts(reference_outputs, tmp_path):
    from pytest_autopilot.core.errors import HarnessError

    case = _case("shapes_video")
    ctx = OracleContext(workdir=_variant(reference_outputs, tmp_path), execution=None, answer="",
                        params={**case.step("code").oracle.params, "colour": "red"}, case_dir=case.dir,
                        assets={}, workspace={})
    with pytest.raises(HarnessError, match="unknown params"):
        oracles.get("vision_detection")(ctx)


# ----------------------------------------------------------------------------- solutions through the loop


@pytest.mark.parametrize("label, solution, check", _solutions(_case("shapes_video"), "bad_label_off_by_one"),
                         ids=["reference", "bad_label_off_by_one"])
def test_pycpu_sg_solutions_locally(cpu, label, solution, check):
    attempt = judge(_case("shapes_video"), cpu, solution)
    _assert_judged(attempt, check, label)
    assert attempt.execution.isolation.get("network_namespace") is not None  # the local sandbox ran it
    if label != "reference":  # (the self-test's legacy_accepted shows the other silent failures)
        assert attempt.legacy.passed, f"{label} should be a silent failure the paper's check accepts"


@pytest.mark.xdist_group("sshd")  # with the other tests of the session's sshd (--dist loadgroup)
def test_pytpu_sg_reference_over_ssh(remote):
    """The reference on the SSH executor; the known-bad ones run over the same loopback board in
    the shipped self-test."""
    (label, solution, check), = _solutions(_case("shapes_video_edgetpu"))
    attempt = judge(_case("shapes_video_edgetpu"), remote, solution)
    _assert_judged(attempt, check, label)
    iso = attempt.execution.isolation
    assert iso["executor"] == "ssh" and iso["remote_dir_removed"] and not iso["edgetpu"]
    assert "running model/shapes_detect.tflite on the CPU" in attempt.execution.stdout
    assert set(iso["downloaded"]) == {"out/annotated.mp4", "out/detections.jsonl", "out/run_info.json"}


@pytest.mark.xdist_group("sshd")  # with the other tests of the session's sshd (--dist loadgroup)
def test_pytpu_sg_hang_on_the_board_is_a_timeout_and_killed(remote, sshd):
    case = _case("shapes_video_edgetpu")
    code = case.solution_path("shapes_video_edgetpu/solutions/reference.py").read_text().replace(
        '    print(f"Edge TPU delegate unavailable ({exc}); running {MODEL} on the CPU")',
        '    import subprocess, time\n    subprocess.Popen(["sleep", "3001"])\n'
        '    print("waiting for the Edge TPU", flush=True)\n    while True:\n        time.sleep(1)')
    started = time.monotonic()
    attempt = judge(case, remote, code=code, timeout_s=4)
    assert time.monotonic() - started < 30
    assert attempt.category == Category.TIMEOUT and attempt.execution.timed_out
    assert attempt.execution.isolation["kill_verified"] and "waiting for the Edge TPU" in attempt.execution.stdout
    status, out, _ = remote_shell(sshd.target(), "pgrep -f 'sleep 300[1]' || true")
    assert out.strip() == ""


def test_managed_loopback_board_runs_the_case(ssh_targets):
    from sshd_plugin import skip_without_sshd

    skip_without_sshd()
    case = _case("shapes_video_edgetpu")
    attempt = judge(case, ssh_targets.for_board(case.board), case.solution_path("shapes_video_edgetpu/solutions/reference.py"))
    assert attempt.strict_passed, _explain(attempt)
    assert attempt.execution.isolation["target"] == "loopback_ssh"


# ----------------------------------------------------------------------------- paper-faithful cases


def test_external_inputs_missing_give_the_hint(monkeypatch, cpu):
    monkeypatch.delenv(PAPER_ENV, raising=False)
    case = _case("sheeps_paper")
    with pytest.raises(ToolchainMissing, match=rf"set \${PAPER_ENV}.*detect.tflite, labelmap.txt, sheeps.mp4"):
        judge(case, cpu, case.solution_path("sheeps_paper/solutions/reference.py"))
    assert not project_registries().toolchains.get("paper_detection_assets").check()


@pytest.mark.parametrize("label, solution, check", _solutions(_case("sheeps_paper"), "bad_label_off_by_one"),
                         ids=["reference", "bad_label_off_by_one"])
def test_paper_pycpu_sg_solutions(paper_assets, cpu, label, solution, check):
    assert project_registries().toolchains.get("paper_detection_assets").check()
    attempt = judge(_case("sheeps_paper"), cpu, solution)
    _assert_judged(attempt, check, label)


def test_paper_reference_pipeline_sees_the_sheep(paper_assets, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOPILOT_CACHE_DIR", str(tmp_path / "cache"))
    labels = detection.load_labels(paper_assets / "labelmap.txt")
    ref = detection.reference_detections(detection.DetectorSpec(paper_assets / "detect.tflite", tuple(labels)),
                                         paper_assets / "sheeps.mp4")
    assert ref["frames"] == 166 and (ref["width"], ref["height"]) == (360, 640)
    found = [d["label"] for frame in ref["detections"] for d in frame]
    assert found.count("sheep") > 100, sorted(set(found))


@pytest.mark.coral
def test_paper_case_on_a_real_coral(paper_assets, ssh_targets):
    if os.environ.get("AUTOPILOT_CORAL") != "1":
        pytest.skip("no Coral Dev Board: connect it (hardware/coral_dev_board.yaml) and export AUTOPILOT_CORAL=1")
    if not (paper_assets / "detect_edgetpu.tflite").is_file():
        pytest.skip(f"{paper_assets}/detect_edgetpu.tflite (edgetpu_compiler output) is missing")
    case = _case("sheeps_paper_coral")
    attempt = judge(case, ssh_targets.for_board(case.board),
                    case.solution_path("sheeps_paper_coral/solutions/reference.py"))
    assert attempt.strict_passed, _explain(attempt)
    assert next(c for c in attempt.strict.checks if c.name == "run_info").detail.startswith("delegate 'edgetpu'")
