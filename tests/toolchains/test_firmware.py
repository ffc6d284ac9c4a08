"""ArdSG stage: firmware toolchains (arduino-builder/arduino-cli + simavr, arm-none-eabi + QEMU),
the strict oracle, the three cases and their assets.

Each toolchain's reference is accepted and the Uno's RAM overflow rejected by its declared
``caught_by`` check, through the real build tools and simulators (the shipped self-test judges
every other known-bad solution; the tests below cover the build failure, the endless loop and
the fault paths). Tests that need them skip with the exact install command when the Debian
packages are missing. The Arduino core is built once into the user cache and reused by every
test, worker and later run.

Run: ``.venv/bin/python -m pytest tests/test_ardsg.py -q -p no:cacheprovider`` (``-m hil`` with a
board attached runs the hardware-in-the-loop test too).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import importlib.util
import json
import multiprocessing
import re
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import yaml

from pytest_autopilot.cases.boards import load_board
from pytest_autopilot.cases.spec import resolve_references
from pytest_autopilot.core.errors import HarnessError, ToolchainMissing
from pytest_autopilot.core.records import Category, ExecResult, Verdict
from pytest_autopilot.executors import BUILTIN, serial_hil, simulators
from pytest_autopilot.executors.firmware import FirmwareExecutor
from pytest_autopilot.executors.sandbox import Limits, Sandbox
from pytest_autopilot.llm.standin import answer_text
from pytest_autopilot.loop.normalise import normalise_error
from pytest_autopilot.oracles import OracleContext
from pytest_autopilot.oracles import ardsg as ardsg_oracles
from pytest_autopilot.oracles.legacy import legacy_compiles
from pytest_autopilot.toolchains import BUILTIN as TOOLCHAINS
from pytest_autopilot.toolchains import arduino, requirement, sizes
from pytest_autopilot.toolchains.armgcc import ArmGccToolchain

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "cases" / "ardsg"
ASSETS = CASES / "assets"
PROMPTS = ROOT / "prompts"
HARDWARE = ROOT / "hardware"
SCRIPT = ROOT / "scripts" / "make_ardsg_assets.py"
CASE_NAMES = ("uno_colour_sim", "mps2_colour_qemu", "nano33_colour_paper")

REQUIREMENTS = {name: requirement(name) for name in TOOLCHAINS}
AVR, ARM = ("arduino-avr", "simavr"), ("arm-none-eabi", "qemu-arm")
AVR_READY = all(REQUIREMENTS[name].check() for name in AVR)
ARM_READY = all(REQUIREMENTS[name].check() for name in ARM)
NANO_READY = REQUIREMENTS["arduino-cli-nano33ble"].check()
needs_avr = pytest.mark.skipif(not AVR_READY, reason="AVR toolchain or simavr missing; install: "
                               + "; ".join(REQUIREMENTS[name].hint for name in AVR))
needs_arm = pytest.mark.skipif(not ARM_READY, reason="arm-none-eabi or qemu-system-arm missing; install: "
                               + "; ".join(REQUIREMENTS[name].hint for name in ARM))


# ----------------------------------------------------------------------------- helpers


@dataclasses.dataclass
class CaseView:
    """A case file read from YAML with its ``${context.*}`` references resolved (no schema): what
    the toolchain and oracle need."""

    name: str
    raw: dict
    board: object

    @property
    def assets(self) -> dict[str, Path]:
        return {n: (CASES / rel).resolve() for n, rel in self.raw["assets"].items()}

    @property
    def workspace(self) -> dict[str, str]:
        return dict(self.raw["workspace"])

    def files(self, overrides: dict[str, str] | None = None) -> dict[str, Path]:
        files = {dest: self.assets[asset] for dest, asset in self.workspace.items()}
        files.update({dest: self.assets[asset] for dest, asset in (overrides or {}).items()})
        return files

    def step(self, name: str) -> dict:
        return next(s for s in self.raw["steps"] if s["name"] == name)

    def solutions(self) -> list[tuple[str, Path, str | None]]:
        """(step key, file, caught-by check or None for references)."""
        sols = self.raw["solutions"]
        out = [(key, CASES / rel, None) for key, rel in sols["reference"].items()]
        for key, bads in sols.get("bad", {}).items():
            out += [(key, CASES / bad["file"], bad["caught_by"]) for bad in bads]
        return out


def _view(name: str) -> CaseView:
    path = CASES / f"{name}.yaml"
    raw = resolve_references(path, yaml.safe_load(path.read_text()))
    return CaseView(name, raw, load_board(HARDWARE.resolve(), raw["board"]))


def _limits(view: CaseView) -> Limits:
    return Limits().replace(timeout_s=view.raw.get("timeouts", {}).get("run_s"),
                            memory_mb=view.raw.get("limits", {}).get("memory_mb"))


def _code(path: Path, language: str) -> str:
    from pytest_autopilot.loop.extract import extract_code

    return extract_code(answer_text(path), language).text


def _explain(verdict: Verdict) -> str:
    return "\n".join(f"{'ok ' if c.passed else 'BAD'} {c.name}: {c.detail[:300]}" for c in verdict.checks)


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox()


@pytest.fixture(scope="session")
def core_cache() -> arduino.CoreCache:
    """The user's core cache (as the sweep uses it): built once under its file lock, then shared by
    every worker and every later run. The cache's own tests use fresh folders."""
    return arduino.CoreCache()


def _executor(view: CaseView, sandbox: Sandbox, cache, **kwargs) -> FirmwareExecutor:
    if view.raw["executor"] == "arduino":
        return FirmwareExecutor(arduino.ArduinoToolchain(sandbox, view.board, cache=cache), **kwargs)
    return FirmwareExecutor(ArmGccToolchain(sandbox, view.board), **kwargs)


def _rerun(executor, limits: Limits):
    """``OracleContext.run`` as the loop provides it: the same executor and limits, a fresh work dir."""

    @contextmanager
    def run(code: str, files, prefix: str = "rerun-"):
        workdir = executor.sandbox.new_workdir(prefix=prefix)
        try:
            yield executor.execute(code, workdir, files, limits), workdir
        finally:
            executor.sandbox.cleanup(workdir)

    return run


def _judge(view: CaseView, sandbox: Sandbox, cache, step: str, code: str, *, steps=None, **kwargs):
    """Build + run one answer as the loop does, then the step's strict oracle."""
    executor = _executor(view, sandbox, cache, **kwargs)
    spec = view.step(step)
    workdir = sandbox.new_workdir(prefix="ardsg-test-")
    try:
        execution = executor.execute(code, workdir, view.files(), _limits(view))
        ctx = OracleContext(workdir=workdir, execution=execution, answer=code, params=dict(spec["oracle"]["params"]),
                            case_dir=CASES, assets=view.assets, workspace=view.workspace, sandbox=sandbox,
                            limits=_limits(view), inputs=view.files(), board=view.board, steps=steps or {},
                            run=_rerun(executor, _limits(view)))
        verdict = ardsg_oracles.ardsg_firmware(ctx)
    finally:
        sandbox.cleanup(workdir)
    return execution, verdict


def _load(name: str):
    """The case through the project's schema (needs the ArdSG wiring of cases.py)."""
    from pytest_autopilot.cases.spec import CaseError, load_case

    try:
        return load_case(CASES / f"{name}.yaml", PROMPTS, HARDWARE)
    except CaseError as exc:
        pytest.fail(f"{exc}\n(the ArdSG cases need cases.CaseSpec.executor to accept 'arduino' and 'arm-none-eabi', "
                    "StepSpec.legacy and RequiresSpec.on_missing)")


def _vectors() -> dict:
    return json.loads((ASSETS / "vectors.json").read_text())


def _script():
    spec = importlib.util.spec_from_file_location("make_ardsg_assets", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- assets


def test_reference_classes_are_what_the_model_header_computes():
    """vectors.json's classes are the argmax of the emlearn header's own weights, with margin."""
    script = _script()
    layers = script.header_network((ASSETS / "fruit_model.h").read_text())
    data = _vectors()
    assert data["classes"] == ["apple", "banana", "orange"]
    for name, current in data["sets"].items():
        x = np.array([r[:3] for r in current["readings"]], dtype=np.float32) / 255.0
        probs = script.forward(layers, x)
        assert probs.argmax(axis=1).tolist() == current["expected"], name
        top = np.sort(probs, axis=1)
        assert (top[:, -1] - top[:, -2] >= data["min_margin"]).all(), name
        assert len(set(current["expected"])) == 3, f"set {name} must cover every class"
        assert all(r[3] == sum(r[:3]) and sum(r[:3]) >= 30 for r in current["readings"])
    visible = {tuple(r) for r in data["sets"]["visible"]["readings"]}
    hidden = {tuple(r) for r in data["sets"]["hidden"]["readings"]}
    assert not visible & hidden
    samples = {(s["red"], s["green"], s["blue"]) for s in data["prompt_samples"]}
    assert not samples & {r[:3] for r in visible | hidden}, "prompt samples must never be replayed"


def test_vector_headers_match_vectors_json():
    script = _script()
    for name, current in _vectors()["sets"].items():
        assert (ASSETS / f"sim_vectors_{name}.h").read_text() == script.vectors_header(name, current["readings"])


def test_asset_script_regenerates_the_committed_files(tmp_path):
    # find_spec, not importorskip: importing emlearn sets numpy.seterr(all="raise") process-wide
    if importlib.util.find_spec("emlearn") is None:
        pytest.skip("pip install emlearn")
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip('pip install "pytest-autopilot[mc]"')
    script = _script()
    before = np.geterr()
    script.main(["--out", str(tmp_path)])
    assert np.geterr() == before, "the script must leave numpy's error state alone"
    for rel in ("fruit_model.h", "sim_vectors_visible.h", "sim_vectors_hidden.h", "vectors.json",
                "fruit_model_tflite.h", "emlearn/eml_net.h", "emlearn/eml_common.h", "emlearn/library.properties"):
        assert (tmp_path / rel).read_bytes() == (ASSETS / rel).read_bytes(), rel
    assert not (tmp_path / "tmp").exists() and not (ROOT / "tmp").exists(), "emlearn's ./tmp must not leak"


def test_sim_library_has_the_arduino_apds9960_api():
    header = (ASSETS / "SimAPDS9960" / "src" / "Arduino_APDS9960.h").read_text()
    for api in ("bool begin()", "void end()", "int colorAvailable()", "bool readColor(int& r, int& g, int& b)",
                "bool readColor(int& r, int& g, int& b, int& c)", "int proximityAvailable()", "int readProximity()",
                "int gestureAvailable()", "int readGesture()", "static APDS9960 APDS;", "#define ARDUINO_APDS9960"):
        assert api in header, api
    assert not (ASSETS / "SimAPDS9960" / "src" / "sim_vectors.h").exists(), "the harness lays the readings out per build"


# ----------------------------------------------------------------------------- cases, prompts


@pytest.mark.parametrize("name", CASE_NAMES)
def test_case_loads_and_context_agrees_with_board_and_oracle(name):
    case = _load(name)
    view = _view(name)
    ctx, board = case.spec.context, case.board
    assert ctx["flash_budget_bytes"] == board.model_flash_budget
    assert ctx["ram_budget_bytes"] == board.model_ram_budget
    samples = [{k: s[k] for k in ("red", "green", "blue", "class")} for s in _vectors()["prompt_samples"]]
    assert ctx["sample_rows"] == samples
    assert ctx["classes"] == _vectors()["classes"]
    for step in case.spec.steps:
        if step.oracle.name == "ardsg_firmware":
            p = step.oracle.params
            assert step.legacy == "compiles"
            assert p.get("baud", ctx.get("baud_rate")) == ctx.get("baud_rate")
            assert p.get("spec_baud", ctx.get("baud_rate")) == ctx.get("baud_rate")
            hidden_dest = next(iter(p["hidden"]["files"]))
            assert hidden_dest in case.spec.workspace, "the hidden set must replace a laid-out file"
            keys = list(case.spec.workspace)
            parent = next(k for k in keys if hidden_dest.startswith(k + "/")) if any(
                hidden_dest.startswith(k + "/") for k in keys) else None
            if parent:
                assert keys.index(parent) < keys.index(hidden_dest), "a folder must come before the files overriding it"
    for toolchain in case.spec.requires.toolchains:
        assert toolchain in REQUIREMENTS
    assert BUILTIN[view.raw["executor"]].startswith("pytest_autopilot.executors.firmware:")


@pytest.mark.parametrize("name", CASE_NAMES)
def test_prompts_render_every_input(name):
    from pytest_autopilot.cases.prompts import render

    case = _load(name)
    spec = json.loads((CASES / "nano33_colour_paper/solutions/spec.json").read_text())
    for step in case.spec.steps:
        text = render(PROMPTS, step.prompt, {**case.spec.context, "description": case.spec.description,
                                             "steps": {"spec": spec}, "language": step.language,
                                             "workspace": dict(case.spec.workspace), "inputs": [], "item": None,
                                             "items": None})
        assert "fruit" in text and "apple" in text
        if step.kind == "code":
            assert f"```{step.language}" in text and "class: <name>" in text
            for row in case.spec.context["sample_rows"]:
                assert f"{row['red']}, {row['green']}, {row['blue']} -> {row['class']}" in text
            assert str(case.board.model_flash_budget) in text and str(case.board.model_ram_budget) in text
    if name == "nano33_colour_paper":
        assert '"tensor_arena_size": 8192' in render(PROMPTS, "ardsg/nano33_sketch.j2", {
            **case.spec.context, "description": case.spec.description, "steps": {"spec": spec}, "language": "cpp"})


@pytest.mark.parametrize("name", CASE_NAMES)
def test_standin_scripts_mix_first_try_repair_and_failure(name):
    view = _view(name)
    stems = {p.stem for _, p, _ in view.solutions()}
    outcomes = []
    for script in view.raw["standin"]:
        final = [names[-1] for names in script.values()]
        assert all(n in stems for names in script.values() for n in names)
        longest = max(len(names) for names in script.values())
        outcomes.append("fail" if any(f != "reference" for f in final) else ("first" if longest == 1 else "repaired"))
    assert len(view.raw["standin"]) == 4
    assert {"first", "repaired", "fail"} <= set(outcomes), outcomes


# ----------------------------------------------------------------------------- UART parsing


def test_simavr_uart_text_restores_lines():
    green, reset = "\x1b[32m", "\x1b[0m"
    stderr = (f"{green}class: apple..\n{reset}{green}x.\n{reset}simavr: a diagnostic\n"
              f"{green}{'a' * 256}\n{reset}{green}b..\n{reset}{green}1.5...\n{reset}")
    text = simulators.simavr_uart_text(stderr)
    assert text == "class: apple\r\nx\n" + "a" * 256 + "b\r\n1.5.\r\n"
    assert simulators.simavr_diagnostics("Loaded 10 .text\nsomething odd", stderr) == "something odd\nsimavr: a diagnostic"
    assert simulators.simavr_baud("UART: 0 configured to 00cf = 9615.3846 bps (x2), 8 data 1 stop") == pytest.approx(9615.3846)
    labels, _ = ardsg_oracles.prediction_lines(text, ardsg_oracles.DEFAULT_LINE_PATTERN)
    assert labels == ["apple"]


# ----------------------------------------------------------------------------- firmware sizes


def _cli_document(sections: list[dict], compiler_out: str = "Sketch compiled\n") -> dict:
    """What ``arduino-cli compile --format json`` prints (the fields the harness reads)."""
    return {"compiler_out": compiler_out, "compiler_err": "",
            "builder_result": {"build_path": "/tmp/x/build", "executable_sections_size": sections}, "success": True}


def test_sizes_from_an_arduino_cli_json_document():
    uno = _cli_document([{"name": "text", "size": 6410, "max_size": 32256}, {"name": "data", "size": 743, "max_size": 2048}])
    assert sizes.cli_sizes(uno) == {"flash_bytes": 6410, "flash_max": 32256, "ram_bytes": 743, "ram_max": 2048}
    # arduino-cli leaves zero fields out: no data at all, a platform that states no limits
    bare = _cli_document([{"name": "text", "size": 100}, {"name": "data"}])
    assert sizes.cli_sizes(bare) == {"flash_bytes": 100, "flash_max": None, "ram_bytes": 0, "ram_max": None}
    assert sizes.cli_sizes(_cli_document([])) is None
    assert sizes.cli_sizes({"compiler_out": "", "success": True}) is None
    assert sizes.cli_sizes(None) is None


SIZED_C = """
int table[4] = {1, 2, 3, 4};          /* .data */
char buffer[100];                      /* .bss */
const char message[] = "sized";        /* read-only: text */
int main(void) { buffer[table[1]] = message[table[0]]; return buffer[2]; }
"""
ELF_COMPILERS = [("avr-gcc", ["-mmcu=atmega328p", "-Os"], "avr-size"),
                 ("arm-none-eabi-gcc", ["-mcpu=cortex-m3", "-mthumb", "-O2", "--specs=nosys.specs"], "arm-none-eabi-size")]


@pytest.mark.parametrize("compiler,flags,size_tool", ELF_COMPILERS, ids=[c[0] for c in ELF_COMPILERS])
def test_sizes_from_a_real_elf_match_berkeley_size(tmp_path, compiler, flags, size_tool):
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} is not installed; install it with: "
                    + REQUIREMENTS["arduino-avr" if compiler == "avr-gcc" else "arm-none-eabi"].hint)
    (tmp_path / "sized.c").write_text(SIZED_C)
    subprocess.run([compiler, *flags, "sized.c", "-o", "sized.elf"], cwd=tmp_path, check=True, capture_output=True)
    elf = tmp_path / "sized.elf"
    got = sizes.elf_sizes(elf)
    sections = sizes.berkeley_sizes(elf)
    assert got == {"flash_bytes": sections["text"] + sections["data"], "ram_bytes": sections["data"] + sections["bss"]}
    assert sections["data"] >= 4 * 2 and sections["bss"] >= 100 and sections["text"] > len("sized")
    if shutil.which(size_tool) is not None:  # the numbers `size -B` printed before pyelftools read them
        row = subprocess.run([size_tool, "-B", str(elf)], capture_output=True, text=True, check=True).stdout.splitlines()[1]
        text, data, bss = (int(v) for v in row.split()[:3])
        assert sections == {"text": text, "data": data, "bss": bss}
    assert sizes.elf_sizes(tmp_path / "missing.elf") is None
    (tmp_path / "not.elf").write_text("not an ELF file")
    assert sizes.elf_sizes(tmp_path / "not.elf") is None


class RecordingSandbox:
    """A sandbox whose every command "passes" with ``stdout``; it records the commands."""

    def __init__(self, tmp_path: Path, stdout: str = ""):
        self.tmp_path, self.stdout, self.calls = tmp_path, stdout, []

    def run(self, argv, workdir, *, limits=None, env_extra=None, stdin=None):
        self.calls.append({"argv": list(argv), "env": dict(env_extra or {})})
        return ExecResult(0, self.stdout, "", 0.1)

    def new_workdir(self, prefix: str = "attempt-") -> Path:
        path = self.tmp_path / f"{prefix}{len(self.calls)}"
        path.mkdir()
        return path

    def cleanup(self, workdir: Path) -> None:
        shutil.rmtree(workdir, ignore_errors=True)


def test_arduino_cli_build_reads_its_json_report_in_the_c_locale(tmp_path):
    sandbox = RecordingSandbox(tmp_path, json.dumps(_cli_document(
        [{"name": "text", "size": 6410, "max_size": 32256}, {"name": "data", "size": 743, "max_size": 2048}],
        compiler_out=f"Sketch uses 6410 bytes, built in {tmp_path}/work/build\n")))
    toolchain = arduino.ArduinoToolchain(sandbox, _view("uno_colour_sim").board, backend="arduino-cli", cache=False)
    (tmp_path / "work").mkdir()
    result = FirmwareExecutor(toolchain, run="none").execute("void setup() {}\nvoid loop() {}\n", tmp_path / "work", {},
                                                             Limits(timeout_s=60))
    (build,) = sandbox.calls
    assert build["argv"][:2] == ["arduino-cli", "compile"] and "--format" in build["argv"]
    assert build["env"]["LC_ALL"] == "C"
    report = result.isolation["build"]
    assert {k: report[k] for k in sizes.SIZE_KEYS} == {"flash_bytes": 6410, "flash_max": 32256, "ram_bytes": 743,
                                                       "ram_max": 2048}
    assert result.stdout == "Sketch uses 6410 bytes, built in build\n", "the compiler's output, not the JSON document"


@pytest.mark.skipif(not REQUIREMENTS["arm-none-eabi"].check(), reason=REQUIREMENTS["arm-none-eabi"].hint)
def test_a_passed_build_without_sizes_is_a_harness_error_and_builds_run_in_the_c_locale(tmp_path):
    """The compiler "passes" but leaves no app.elf: the harness cannot judge flash and RAM,
    which must never count against the model."""
    sandbox = RecordingSandbox(tmp_path)
    executor = FirmwareExecutor(ArmGccToolchain(sandbox, _view("mps2_colour_qemu").board), run="none")
    (tmp_path / "work").mkdir()
    with pytest.raises(HarnessError, match="the build reported no program size") as raised:
        executor.execute("int main(void) { return 0; }\n", tmp_path / "work", {}, Limits(timeout_s=60))
    assert raised.value.category == Category.HARNESS_ERROR
    assert [call["env"].get("LC_ALL") for call in sandbox.calls] == ["C"]
    with pytest.raises(HarnessError):
        sizes.required(None, "no ELF")


def test_oracle_treats_a_build_without_sizes_as_a_harness_error():
    view = _view("uno_colour_sim")
    execution = ExecResult(0, "", "", 1.0, isolation={"build": {"returncode": 0, "tool": "x", "flash_bytes": None,
                                                                "ram_bytes": None}, "phase": "build"})
    ctx = OracleContext(workdir=Path("."), execution=execution, answer="", params=dict(view.step("sketch")["oracle"]["params"]),
                        case_dir=CASES, assets=view.assets, workspace=view.workspace, board=view.board)
    with pytest.raises(HarnessError, match="no program size"):
        ardsg_oracles.ardsg_firmware(ctx)


# ----------------------------------------------------------------------------- references and known-bad, real toolchains


KEPT_SOLUTIONS = {"uno_colour_sim": ("reference", "bad_ram_overflow"), "mps2_colour_qemu": ("reference",)}


def _solution_params():
    """Each toolchain's reference and the Uno's RAM overflow (whose why must state the measured RAM)."""
    params = []
    for name, stems in KEPT_SOLUTIONS.items():
        view = _view(name)
        mark = needs_avr if view.raw["executor"] == "arduino" else needs_arm
        for key, path, check in view.solutions():
            if path.stem in stems:
                params.append(pytest.param(name, key, path, check, marks=mark, id=f"{name}-{path.stem}"))
    return params


@pytest.mark.parametrize("name,key,path,check", _solution_params())
def test_solution_judged_as_expected(name, key, path, check, sandbox, core_cache):
    view = _view(name)
    step = view.step(key)
    execution, verdict = _judge(view, sandbox, core_cache, key, _code(path, step["language"]))
    legacy = legacy_compiles(execution)
    if check is None:
        assert verdict.passed, _explain(verdict)
        assert {c.name for c in verdict.checks} >= {"builds", "flash_fits", "ram_fits", "finishes", "prints_output",
                                                    "output_format", "reading_count", "predictions_match",
                                                    "hidden_vectors"}
        assert legacy.passed
        run = execution.isolation["run"]
        assert run["duration_s"] > 0 and not run["timed_out"], "the simulated-run time is reported per attempt"
        return
    assert not verdict.passed, f"{path.name} was ACCEPTED:\n{_explain(verdict)}"
    failed = {c.name for c in verdict.failed_checks}
    assert check in failed, f"{path.name}: expected {check!r} to fail; failed: {sorted(failed)}\n{_explain(verdict)}"
    assert verdict.category in Category.ALL
    assert legacy.passed, "it compiles, so the paper's check passes it (a silent failure strict catches)"
    ram = execution.isolation["build"]["ram_bytes"]
    assert view.board.model_ram_budget < ram, ram
    assert f"{ram} bytes" in path.read_text() or str(ram) in json.dumps(view.raw["solutions"]), \
        f"the why text should state the measured RAM ({ram} bytes)"


@needs_avr
def test_failed_build_carries_normalised_compiler_output(sandbox, core_cache):
    view = _view("uno_colour_sim")
    code = _code(CASES / "uno_colour_sim/solutions/bad_wrong_api.ino", "cpp")
    feedback = []
    for _ in range(2):  # two work dirs: the repair prompt must not change (cassettes match on it)
        workdir = sandbox.new_workdir(prefix="ardsg-test-")
        try:
            execution = _executor(view, sandbox, core_cache).execute(code, workdir, view.files(), _limits(view))
        finally:
            sandbox.cleanup(workdir)
        assert execution.returncode not in (0, None) and not execution.timed_out
        assert execution.isolation["phase"] == "build"
        text = execution.stdout + execution.stderr + json.dumps(execution.isolation["build"])
        assert str(workdir) not in text and "/tmp/" not in text
        assert "sketch/sketch.ino:19:43: error: too few arguments to function" in execution.stderr
        assert "error:" in execution.stderr.lower()  # the generic legacy check's marker is there too
        feedback.append(normalise_error(execution.stderr, 3000))
    assert feedback[0] == feedback[1] and "<TMP>" not in feedback[0]


@needs_arm
def test_failed_bare_metal_build_has_no_temp_paths(sandbox):
    view = _view("mps2_colour_qemu")
    workdir = sandbox.new_workdir(prefix="ardsg-test-")
    try:
        code = _code(CASES / "mps2_colour_qemu/solutions/bad_missing_header.c", "c")
        execution = _executor(view, sandbox, None).execute(code, workdir, view.files(), _limits(view))
    finally:
        sandbox.cleanup(workdir)
    assert execution.returncode == 1 and str(workdir) not in execution.stderr and "/tmp/" not in execution.stderr
    assert execution.stderr.startswith("main.c:") and "fatal error" in execution.stderr


@needs_arm
def test_link_errors_read_the_same_on_every_build(sandbox):
    """gcc names its objects at random; the linker's message (a repair prompt) must not change."""
    view = _view("mps2_colour_qemu")
    code = "int missing(void);\nint main(void) { return missing(); }\n"
    messages = []
    for _ in range(2):
        workdir = sandbox.new_workdir(prefix="ardsg-test-")
        try:
            messages.append(_executor(view, sandbox, None).execute(code, workdir, view.files(), _limits(view)).stderr)
        finally:
            sandbox.cleanup(workdir)
    assert "undefined reference to `missing'" in messages[0] and "cc-temp.o" in messages[0]
    assert messages[0] == messages[1]


# ----------------------------------------------------------------------------- core cache


def _concurrent_build(cache_root: str) -> dict:
    """One build in its own process (as an xdist worker would do it)."""
    sandbox = Sandbox()
    view = _view("uno_colour_sim")
    executor = FirmwareExecutor(arduino.ArduinoToolchain(sandbox, view.board, cache=arduino.CoreCache(Path(cache_root))),
                                run="none")
    workdir = sandbox.new_workdir(prefix="ardsg-cache-")
    try:
        code = _code(CASES / "uno_colour_sim/solutions/reference.ino", "cpp")
        result = executor.execute(code, workdir, view.files(), Limits(timeout_s=120))
        core_objects = sorted(p.name for p in (workdir / "build" / "core").glob("*.o")) \
            if (workdir / "build" / "core").is_dir() else []
    finally:
        sandbox.cleanup(workdir)
    return {"returncode": result.returncode, "core_cache": result.isolation["build"]["core_cache"],
            "core_objects": core_objects, "flash": result.isolation["build"]["flash_bytes"]}


@needs_avr
def test_core_cache_is_built_once_under_two_concurrent_builds(tmp_path):
    cache_root = tmp_path / "core-cache"
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as pool:
        results = list(pool.map(_concurrent_build, [str(cache_root)] * 2))
    assert [r["returncode"] for r in results] == [0, 0]
    assert sorted(r["core_cache"] for r in results) == ["hit", "warmed"], results
    assert all(r["core_objects"] == [] for r in results), "a cached build must not compile the core"
    assert results[0]["flash"] == results[1]["flash"]
    entries = [p for p in cache_root.iterdir() if p.is_dir()]
    assert len(entries) == 1 and (entries[0] / "READY").is_file() and list(entries[0].rglob("core_*.a"))
    assert not list(cache_root.glob("*.staging-*"))
    # a third build reuses it
    assert _concurrent_build(str(cache_root))["core_cache"] == "hit"


@needs_avr
def test_cache_off_compiles_the_core_in_the_work_dir(sandbox):
    view = _view("uno_colour_sim")
    executor = FirmwareExecutor(arduino.ArduinoToolchain(sandbox, view.board, cache=False), run="none")
    workdir = sandbox.new_workdir(prefix="ardsg-test-")
    try:
        result = executor.execute(_code(CASES / "uno_colour_sim/solutions/reference.ino", "cpp"), workdir,
                                   view.files(), Limits(timeout_s=120))
        assert result.returncode == 0 and result.isolation["build"]["core_cache"] == "off"
        assert list((workdir / "build" / "core").glob("*.o")), "without the cache the core is compiled"
        assert "run" not in result.isolation and result.isolation["phase"] == "build"
    finally:
        sandbox.cleanup(workdir)


# ----------------------------------------------------------------------------- simulated-run bound


@needs_avr
def test_endless_firmware_costs_at_most_its_simulation_timeout(sandbox, core_cache):
    view = _view("uno_colour_sim")
    board = view.board.model_copy(update={"simulator": view.board.simulator.model_copy(update={"timeout_s": 2.0})})
    executor = FirmwareExecutor(arduino.ArduinoToolchain(sandbox, board, cache=core_cache))
    workdir = sandbox.new_workdir(prefix="ardsg-test-")
    try:
        code = _code(CASES / "uno_colour_sim/solutions/bad_infinite_loop.ino", "cpp")
        started = time.monotonic()
        execution = executor.execute(code, workdir, view.files(), Limits(timeout_s=60))
        elapsed = time.monotonic() - started
    finally:
        sandbox.cleanup(workdir)
    run = execution.isolation["run"]
    assert execution.timed_out and execution.returncode is None and run["timed_out"]
    assert run["timeout_s"] == 2.0 and 2.0 <= run["duration_s"] < 4.0
    assert elapsed < execution.isolation["build"]["duration_s"] + 6.0
    assert execution.isolation["timeout_s"] == 2.0  # what the loop's feedback names


@needs_arm
def test_endless_bare_metal_firmware_is_bounded_too(sandbox):
    view = _view("mps2_colour_qemu")
    board = view.board.model_copy(update={"simulator": view.board.simulator.model_copy(update={"timeout_s": 2.0})})
    executor = FirmwareExecutor(ArmGccToolchain(sandbox, board))
    workdir = sandbox.new_workdir(prefix="ardsg-test-")
    try:
        code = _code(CASES / "mps2_colour_qemu/solutions/bad_infinite_loop.c", "c")
        execution = executor.execute(code, workdir, view.files(), Limits(timeout_s=60))
    finally:
        sandbox.cleanup(workdir)
    assert execution.timed_out and 2.0 <= execution.isolation["run"]["duration_s"] < 4.0
    assert execution.stdout.startswith("class: "), "output printed before the bound is kept"


@needs_arm
def test_fault_ends_the_qemu_run_with_a_diagnostic(sandbox):
    view = _view("mps2_colour_qemu")
    code = "#include <stdint.h>\nint main(void) { return *(volatile int *)0xF0000000u; }\n"
    workdir = sandbox.new_workdir(prefix="ardsg-test-")
    try:
        execution = _executor(view, sandbox, None).execute(code, workdir, view.files(), _limits(view))
    finally:
        sandbox.cleanup(workdir)
    assert not execution.timed_out and execution.returncode == 134
    assert "fault" in execution.stderr


# ----------------------------------------------------------------------------- paper case (Nano 33 BLE Sense)


def _spec_verdict(path: Path, board) -> Verdict:
    view = _view("nano33_colour_paper")
    params = view.step("spec")["oracle"]["params"]
    ctx = OracleContext(workdir=Path("."), execution=None, answer=json.loads(path.read_text()), params=params,
                        case_dir=CASES, assets=view.assets, workspace=view.workspace, board=board)
    return ardsg_oracles.ardsg_app_spec(ctx)


def test_app_spec_oracle_accepts_reference_and_rejects_bad_specs():
    view = _view("nano33_colour_paper")
    for key, path, check in view.solutions():
        if key != "spec":
            continue
        verdict = _spec_verdict(path, view.board)
        if check is None:
            assert verdict.passed, _explain(verdict)
        else:
            assert not verdict.passed and check in {c.name for c in verdict.failed_checks}, (path.name, _explain(verdict))


class BuiltOnlyExecutor:
    """Stands in for arduino-cli: every sketch "builds" within the budgets and nothing runs."""

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox

    def execute(self, code, workdir, files, limits) -> ExecResult:
        build = {"returncode": 0, "tool": "stand-in", "duration_s": 0.1, "timed_out": False,
                 "flash_bytes": 100_000, "flash_max": None, "ram_bytes": 50_000, "ram_max": None}
        return ExecResult(0, "", "", 0.1, isolation={"build": build, "phase": "build"})


@pytest.mark.parametrize("sketch,follows", [("reference.ino", True), ("bad_sketch_wrong_baud.ino", False)])
def test_firmware_oracle_sees_the_spec_steps_answer_through_the_loop(sketch, follows):
    """Without ``spec_baud`` the firmware oracle takes the baud rate from the spec step's
    accepted answer, which the loop hands over as ``OracleContext.steps``."""
    from pytest_autopilot.loop.repair import Answer, LoopSettings, RepairLoop

    case = _load("nano33_colour_paper")
    case.spec.steps[1].oracle.params.pop("spec_baud")
    answers = iter([answer_text(CASES / "nano33_colour_paper/solutions/spec.json"),
                    answer_text(CASES / f"nano33_colour_paper/solutions/{sketch}")])
    loop = RepairLoop(case, lambda messages, meta: Answer(next(answers)), BuiltOnlyExecutor(Sandbox()),
                      LoopSettings(1, case.spec.repair.error_chars, "first", Limits(timeout_s=30)))
    attempts = loop.run().attempts
    assert [a.step for a in attempts] == ["spec", "sketch"] and attempts[0].strict_passed
    check = next(c for c in attempts[1].strict.checks if c.name == "follows_spec")
    assert check.passed is follows and "the application spec says 9600 baud" in check.detail, check.detail


def test_paper_case_requirement_names_arduino_cli_install():
    req = REQUIREMENTS["arduino-cli-nano33ble"]
    assert "arduino-cli" in req.hint and "arduino:mbed_nano" in req.hint and "Chirale_TensorFLowLite" in req.hint
    if not NANO_READY:
        with pytest.raises(ToolchainMissing, match="arduino-cli"):
            arduino.ArduinoToolchain(Sandbox(), _view("nano33_colour_paper").board)


@pytest.mark.skipif(not NANO_READY, reason=arduino.ARDUINO_CLI_HINT)
def test_paper_case_sketches_with_arduino_cli(sandbox, core_cache):
    view = _view("nano33_colour_paper")
    spec = json.loads((CASES / "nano33_colour_paper/solutions/spec.json").read_text())
    for key, path, check in view.solutions():
        if key != "sketch":
            continue
        _, verdict = _judge(view, sandbox, core_cache, "sketch", _code(path, "cpp"), steps={"spec": spec})
        if check is None:
            assert verdict.passed, _explain(verdict)
        else:
            assert check in {c.name for c in verdict.failed_checks}, _explain(verdict)


def test_legacy_compiles_reads_the_build_report():
    ok = ExecResult(returncode=None, stdout="", stderr="", duration_s=1.0, timed_out=True,
                    isolation={"build": {"returncode": 0}, "run": {"timed_out": True}})
    bad = ExecResult(returncode=1, stdout="", stderr="error: x", duration_s=1.0, isolation={"build": {"returncode": 1}})
    assert legacy_compiles(ok).passed
    assert not legacy_compiles(bad).passed
    assert not legacy_compiles(None).passed


# ----------------------------------------------------------------------------- hardware in the loop


def test_hil_skip_reason_names_the_port_pattern(monkeypatch):
    monkeypatch.delenv("AUTOPILOT_HIL_PORT", raising=False)
    board = _view("uno_colour_sim").board
    reason = serial_hil.hil_skip_reason(board)
    assert board.access.serial_port_glob in reason and "AUTOPILOT_HIL_PORT" in reason and "Uno" in reason
    monkeypatch.setenv("AUTOPILOT_HIL_PORT", "/dev/does-not-exist")
    assert serial_hil.find_serial_port(board) is None
    assert "AUTOPILOT_HIL_PORT=/dev/does-not-exist does not exist" in serial_hil.hil_skip_reason(board)


@needs_avr
def test_hil_path_with_a_pseudo_terminal_board(monkeypatch, sandbox, core_cache):
    """The hardware-in-the-loop branch end to end, the board played by a pty: the fake
    upload makes the "board" print the reference classes of whichever reading set was built
    (so the oracle's hidden re-run goes through HIL too)."""
    pytest.importorskip("serial", reason="pip install pyserial")
    import os
    import threading

    master, slave = os.openpty()
    port = os.ttyname(slave)
    data = _vectors()
    uploads = []

    def fake_upload(toolchain, workdir, port):
        header = (workdir / "libraries/Arduino_APDS9960/src/sim_vectors.h").read_text()
        current = data["sets"][re.search(r'SIM_VECTOR_SET "(\w+)"', header).group(1)]
        text = "booting\r\n" + "".join(f"class: {data['classes'][k]}\r\n" for k in current["expected"])
        uploads.append(port)

        def board():
            time.sleep(0.3)
            os.write(master, text.encode())

        threading.Thread(target=board, daemon=True).start()
        return ExecResult(0, "avrdude done", "", 0.01)

    monkeypatch.setattr(serial_hil, "upload", fake_upload)
    monkeypatch.setattr(serial_hil, "read_serial", lambda port, baud, timeout_s, idle_s=2.0:
                        _real_read_serial(port, baud, timeout_s, idle_s=0.5))
    view = _view("uno_colour_sim")
    try:
        execution, verdict = _judge(view, sandbox, core_cache, "sketch",
                                    _code(CASES / "uno_colour_sim/solutions/reference.ino", "cpp"),
                                    run="hil", hil_port=port, serial_baud=9600)
    finally:
        os.close(master)
        os.close(slave)
    assert execution.isolation["run"]["kind"] == "hil" and execution.isolation["run"]["port"] == port
    assert verdict.passed, _explain(verdict)
    assert len(uploads) == 2, "the hidden re-run uploads and reads the board too"
    assert "baud_rate" not in {c.name for c in verdict.checks}, "on hardware the serial link itself checks the rate"


_real_read_serial = serial_hil.read_serial


@pytest.mark.hil
@pytest.mark.parametrize("name", ["uno_colour_sim"])
def test_reference_on_a_real_board(name, sandbox, core_cache):
    """Upload the reference build to an attached board, read its serial port, same oracle."""
    view = _view(name)
    port = serial_hil.find_serial_port(view.board)
    if port is None:
        pytest.skip(serial_hil.hil_skip_reason(view.board))
    pytest.importorskip("serial", reason="pip install pyserial")
    execution, verdict = _judge(view, sandbox, core_cache, "sketch",
                                _code(CASES / f"{name}/solutions/reference.ino", "cpp"), run="hil", hil_port=port,
                                serial_baud=view.raw["context"]["baud_rate"])
    assert execution.isolation["run"]["kind"] == "hil"
    assert verdict.passed, _explain(verdict)
