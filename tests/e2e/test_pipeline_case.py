"""The end-to-end case (written as tier 3, calibrated as tier 2) ``cases/pipeline/fruit_to_uno.yaml`` (issue 23) through the real loop
and real parts: pandas in the sandbox, TensorFlow in the warm fork server, arduino-builder and
simavr. Two properties its self-test alone does not show:

* the steps are chained: a wrong data step that its own oracle let through makes the final
  firmware fail (with the reference's files substituted in between, it would pass);
* the held-out readings never reach the model: no prompt (task or repair feedback) and no
  sandbox a step's program runs in holds them; only the firmware oracle's rebuild does.

The answers are the case's stored solutions, served as the self-test serves them. The tier-3
``cases/pipeline/digits_to_uno.yaml`` gets the held-out property checked on its files and prompts
(its chaining and budgets are what its self-test and stand-in replay judge)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from pytest_autopilot.cases.prompts import render
from pytest_autopilot.cases.spec import load_case
from pytest_autopilot.core.errors import ToolchainMissing
from pytest_autopilot.core.records import Check, Verdict
from pytest_autopilot.executors import ExecutorContext, SharedResources, create_executor
from pytest_autopilot.executors.sandbox import Limits, Sandbox
from pytest_autopilot.llm.standin import answer_text
from pytest_autopilot.loop.repair import Answer, LoopSettings, RepairLoop
from pytest_autopilot.toolchains import check_requirements

from project_registries import project_registries

ROOT = Path(__file__).parents[2]
CASE = ROOT / "cases/pipeline/fruit_to_uno.yaml"
HELD_OUT_ASSETS = ("readings_heldout", "heldout", "vectors")


@pytest.fixture(scope="module")
def case():
    registries = project_registries()
    loaded = load_case(CASE, ROOT / "prompts", ROOT / "hardware", registries)
    try:
        check_requirements(loaded.spec.requires.toolchains, registries.toolchains)
    except ToolchainMissing as exc:
        pytest.skip(f"{CASE.name}: {exc}")
    return loaded


@pytest.fixture(scope="module")
def shared():
    """The session's shared parts (the warm TensorFlow server), closed after the module."""
    resources = SharedResources()
    yield resources
    resources.close()


class _Recorded:
    """A real executor, noting the work dir and the input files of every run it does."""

    def __init__(self, executor, runs: list):
        self.executor, self.runs, self.sandbox = executor, runs, executor.sandbox

    def execute(self, code, workdir, files, limits):
        self.runs.append((Path(workdir).name, {rel: Path(src).read_bytes() if isinstance(src, Path) else src
                                               for rel, src in files.items()}))
        return self.executor.execute(code, workdir, files, limits)


def _stored(case, stem: str) -> str:
    """A stored solution as the stand-in serves it (in its fenced block)."""
    return answer_text(next(p for p in (case.dir / "fruit_to_uno/solutions").iterdir() if p.stem == stem))


def _run(case, shared, answers: dict[str, list[str]], registries=None):
    """The loop over the case answering ``answers[step]`` at its attempts, in order."""
    registries = registries or project_registries()
    runs: list[tuple[str, dict[str, bytes]]] = []
    sandbox = Sandbox()
    made = ExecutorContext(case=case, sandbox=sandbox, shared=shared)

    def build(name):
        return _Recorded(create_executor(registries.executors, name, made), runs)

    served = {step: iter(stems) for step, stems in answers.items()}
    prompts: list[str] = []

    def ask(messages, meta):
        prompts.extend(m["content"] for m in messages)
        return Answer(next(served[meta["step_key"]]))

    spec = case.spec
    limits = Limits().replace(timeout_s=spec.timeouts.run_s, cpu_s=spec.limits.cpu_s, memory_mb=spec.limits.memory_mb,
                              file_size_mb=spec.limits.file_size_mb, processes=spec.limits.processes)
    settings = LoopSettings(max(len(stems) for stems in answers.values()), 2000, "first", limits)
    loop = RepairLoop(case, ask, build(case.executor), settings, registries=registries, shared=shared,
                      make_executor=build)
    return loop.run(), prompts, runs


def _accept_all(ctx) -> Verdict:
    return Verdict.from_checks("lenient", [Check("accepted", True, "a weaker step oracle: lets the mistake through")])


def test_a_wrong_data_step_makes_the_final_firmware_fail(case, shared):
    """The data step rotates the class names (apple rows labelled banana, ...); its oracle and the
    model step's are replaced by lenient ones, as a weaker pipeline would have them. The model then
    learns the rotated classes from this run's files, and the firmware prints them."""
    rotated = _stored(case, "data_reference").replace(
        'os.makedirs("out", exist_ok=True)',
        'rotate = {"apple": "banana", "banana": "orange", "orange": "apple"}\n'
        'train["Fruit"], test["Fruit"] = train["Fruit"].map(rotate), test["Fruit"].map(rotate)\n'
        'os.makedirs("out", exist_ok=True)')
    assert rotated != _stored(case, "data_reference")
    registries = project_registries()
    registries.oracle("dp_reference", _accept_all)
    registries.oracle("mc_tflite", _accept_all)
    result, _prompts, _runs = _run(case, shared, {"data": [rotated], "model": [_stored(case, "model_reference")],
                                                  "sketch": [_stored(case, "sketch_reference")]}, registries)
    assert [(a.step, a.strict_passed) for a in result.attempts] == [("data", True), ("model", True), ("sketch", False)]
    sketch = result.attempts[-1].strict
    assert [c.name for c in sketch.failed_checks] == ["accuracy"], sketch.summary()
    right = int(re.search(r"(\d+) of 6 readings printed as their true class", sketch.summary()).group(1))
    assert right <= 2, sketch.summary()  # the reference pipeline prints all 6 right (the self-test)


def test_held_out_readings_reach_no_prompt_and_no_programs_sandbox(case, shared):
    """A run whose sketch is repaired after the held-out rebuild rejected it: its feedback is in the
    second prompt. The held-out files go only to the firmware oracle's rebuild (work dir hidden-*)."""
    result, prompts, runs = _run(case, shared, {
        "data": [_stored(case, "data_reference")], "model": [_stored(case, "model_reference")],
        "sketch": [_stored(case, "sketch_bad_answer_table"), _stored(case, "sketch_reference")]})
    assert result.strict_success
    first_sketch = next(a for a in result.attempts if a.step == "sketch")
    assert [c.name for c in first_sketch.strict.failed_checks] == ["hidden_vectors"]
    assert "(never shown)" in prompts[-1]  # the repair prompt carries the held-out rebuild's feedback

    held_out = {name: case.asset(name).read_bytes() for name in HELD_OUT_ASSETS}
    rebuilds = [files for workdir, files in runs if workdir.startswith("hidden-")]
    assert rebuilds and all(files["sketch/readings.h"] == held_out["readings_heldout"] for files in rebuilds)
    programs = [files for workdir, files in runs if not workdir.startswith("hidden-")]
    assert len(programs) >= 4  # data, model and the two sketches (and the DP oracle's reference run)
    for files in programs:
        assert not set(files.values()) & set(held_out.values()), sorted(files)

    readings = json.loads(held_out["vectors"])["sets"]["heldout"]["readings"]
    for reading in readings:
        for text in (", ".join(map(str, reading)), ",".join(map(str, reading))):
            assert not any(text in prompt for prompt in prompts), text


DIGITS_CASE = ROOT / "cases/pipeline/digits_to_uno.yaml"


def test_digits_to_uno_images_of_the_oracles_are_in_no_input_and_no_prompt():
    """The tier-3 digits pipeline: the 20 visible and 100 held-out images are not rows of the data
    step's table (the classifier never trains on them); no held-out file is in any step's workspace,
    and no prompt names a held-out image. Each prompt states the Uno's budgets the case is built on."""
    case = load_case(DIGITS_CASE, ROOT / "prompts", ROOT / "hardware")
    spec = case.spec
    assert not {"images_heldout", "heldout", "vectors"} & set(spec.workspace.values())
    sets = json.loads(case.asset("vectors").read_text())["sets"]
    assert (len(sets["visible"]["readings"]), len(sets["heldout"]["readings"])) == (20, spec.context["heldout_images"])
    with case.asset("digits").open(newline="") as fh:
        table = {tuple(row[1:]) for row in csv.reader(fh)}
    images = [tuple(map(str, image)) for s in sets.values() for image in s["readings"]]
    assert not [image for image in images if image in table]
    variables = {**spec.context, "description": spec.description, "language": "python"}
    prompts = {step.name: render(ROOT / "prompts", step.prompt, variables) for step in spec.steps}
    for image in sets["heldout"]["readings"]:
        assert not any(", ".join(map(str, image)) in text or ",".join(map(str, image)) in text
                       for text in prompts.values())
    assert all("24576 bytes" in prompts[step] and "1280 bytes" in prompts[step] for step in ("model", "sketch"))
