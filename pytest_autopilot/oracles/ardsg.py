"""Strict oracles of the ArdSG (Arduino sketch generation) stage.

``ardsg_firmware``  a sketch / bare-metal program built and run by a firmware toolchain
                    (:mod:`pytest_autopilot.executors.firmware`). Checks, each recorded:

    ``builds``              the build passed (the compiler's errors otherwise)
    ``flash_fits``          program flash <= the board's flash budget (hardware/<board>.yaml:
                            ``Board.model_flash_budget``; the whole firmware is held to it)
    ``ram_fits``            static RAM (data + bss) <= the board's RAM budget
                            (``Board.model_ram_budget``: what the reserve leaves)
    ``follows_spec``        (when ``spec_baud``/the previous spec step gives one) the sketch
                            opens Serial at the agreed baud rate (checked in the source: the
                            only check possible when nothing runs)
    with a run (simulator or board; ``require_run`` makes its absence a failure):
    ``finishes``            the firmware stopped by itself within the bound (simavr: sleep with
                            interrupts off after the last reading; QEMU: main returned 0)
    ``prints_output``       it printed anything at all
    ``baud_rate``           (simavr, ``baud`` param) UART 0 configured within ``baud_tolerance``
                            of the asked rate (on real hardware a wrong rate garbles the text)
    ``output_format``       prediction lines match ``line_pattern`` with a known class name
    ``reading_count``       exactly one prediction line per replayed reading
    ``predictions_match``   the printed class of every reading equals the reference model's
    ``accuracy``            (``min_accuracy``, instead of predictions_match: a model the pipeline
                            trained itself, whose set's ``expected`` are the true classes) at least
                            that share of readings printed as their class; its detail names no reading
    ``hidden_vectors``      (``hidden`` param, only when everything above passed) the same
                            code rebuilt and run by the case's own executor (``ctx.run``) with a
                            second, never-shown set of readings prints the reference model's
                            class for each of them too: catches firmware that does not run the
                            model (rules, lookup tables, wrong scaling that happens to work on
                            the first set)

``ardsg_app_spec``  the paper's step A: the JSON application spec for the sketch (sensor,
                    libraries, tensor shapes, arena size, baud rate, classes).

The paper's own ArdSG check (``arduino-cli compile`` exit code 0) is
:func:`pytest_autopilot.oracles.legacy.legacy_compiles`, the loop's legacy verdict on firmware steps.

Categories: ``compile_error``, ``link_error`` or ``budget_exceeded`` when the build fails (what
its output says: ``core.records.build_failure_category``), ``budget_exceeded`` when the image
built but does not fit the board's flash or RAM budget, ``timeout`` / ``runtime_error`` when the run did not end cleanly,
``artifact_missing`` when nothing (or no prediction) was printed, else ``semantic_mismatch``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pytest_autopilot.core.errors import HarnessError
from pytest_autopilot.core.records import Category, Check, ExecResult, Verdict, build_failure_category
from pytest_autopilot.core.util import listed
from pytest_autopilot.oracles import OracleContext

DEFAULT_LINE_PATTERN = r"^class: (?P<label>\S+)$"
STANDARD_BAUDS = (300, 1200, 2400, 4800, 9600, 14400, 19200, 28800, 38400, 57600, 115200, 230400, 250000,
                  460800, 500000, 921600, 1000000, 2000000)


# --------------------------------------------------------------------------- helpers


def _vectors(ctx: OracleContext) -> dict[str, Any]:
    name = ctx.params.get("vectors", "vectors")
    path = ctx.assets.get(name)
    if path is None or not Path(path).is_file():
        raise HarnessError(Category.HARNESS_ERROR, f"oracle param vectors={name!r} names no asset file")
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _excerpt(text: str, lines: int = 8, chars: int = 600) -> str:
    head = "\n".join(text.splitlines()[:lines])
    head = head[:chars]
    return repr(head) if head else "(nothing)"


def _first_errors(log: str, limit: int = 6) -> str:
    lines = [l for l in log.splitlines() if re.search(r"error|Error|undefined reference|overflow", l)]
    return "\n".join(lines[:limit]) or log.strip()[-800:]


def _budget_text(board, kind: str) -> str:
    mem = board.memory
    if kind == "flash":
        return (f"{board.model_flash_budget} bytes ({mem.flash_kb:g} KB flash of {board.display_name} "
                f"minus {mem.reserved_flash_kb:g} KB reserved)")
    return f"{board.model_ram_budget} bytes ({mem.ram_kb:g} KB RAM of {board.display_name} minus {mem.reserved_ram_kb:g} KB reserved)"


def _serial_begin_bauds(code: str) -> list[int]:
    code = re.sub(r"//[^\n]*|/\*.*?\*/", "", code, flags=re.S)
    return [int(b) for b in re.findall(r"\bSerial\s*\.\s*begin\s*\(\s*(\d+)", code)]


def prediction_lines(output: str, pattern: str) -> tuple[list[str], list[str]]:
    """(labels of the lines matching ``pattern``, all non-empty lines) of firmware output."""
    regex = re.compile(pattern)
    lines = [l.rstrip("\r").strip() for l in output.replace("\r\n", "\n").split("\n")]
    lines = [l for l in lines if l]
    labels = []
    for line in lines:
        match = regex.match(line)
        if match:
            labels.append(match.group("label") if "label" in regex.groupindex else match.group(1))
    return labels, lines


def judge_run(execution: ExecResult, expected: list[int], classes: list[str], readings: list[list[int]],
              params: dict[str, Any], label: str = "") -> list[Check]:
    """The run checks of one build + run (``label`` prefixes check names, e.g. for re-runs)."""
    run = execution.isolation.get("run", {})
    out = execution.stdout or ""
    pattern = params.get("line_pattern", DEFAULT_LINE_PATTERN)
    checks: list[Check] = []
    timeout = run.get("timeout_s")
    if execution.timed_out:
        detail = (f"the firmware was still running when the {timeout:g} s bound hit (it never stopped by itself); "
                  f"output so far: {_excerpt(out, 4)}") if timeout else "killed at the time limit"
    elif execution.returncode != 0:
        detail = f"the {run.get('kind', 'simulator')} run ended with exit code {execution.returncode}; {execution.stderr.strip()[-600:] or 'no diagnostics'}"
    else:
        detail = f"ended after {run.get('duration_s', execution.duration_s):.2f} s of {run.get('kind', 'run')} wall time"
    checks.append(Check(label + "finishes", not execution.timed_out and execution.returncode == 0, detail,
                        restates_run=not label and execution.returncode != 0 and not execution.timed_out))
    printed = bool(out.strip())
    checks.append(Check(label + "prints_output", printed,
                        f"{len(out)} characters of output" if printed else
                        "the firmware printed nothing (is the serial port / stdout set up and written to?)"))
    if "baud" in params and run.get("kind") == "simavr" and not label:
        want, got = float(params["baud"]), run.get("uart_baud")
        tol = float(params.get("baud_tolerance", 0.025))
        ok = got is not None and abs(got - want) <= tol * want
        checks.append(Check("baud_rate", ok,
                            f"UART 0 configured to {got:.0f} baud, {want:.0f} asked" if got is not None else
                            f"the serial port was never configured (Serial.begin not called); {want:.0f} baud asked"))
    labels, lines = prediction_lines(out, pattern)
    unknown = sorted({l for l in labels if l not in classes})
    format_ok = bool(labels) and not unknown
    if not labels:
        fdetail = (f"no output line matches {pattern!r} (one line per reading, e.g. 'class: {classes[0]}'); "
                   f"first lines: {_excerpt(out)}")
    elif unknown:
        fdetail = f"unknown class names {unknown} in the prediction lines (known: {classes})"
    else:
        fdetail = f"{len(labels)} prediction lines"
    checks.append(Check(label + "output_format", format_ok, fdetail))
    count_ok = len(labels) == len(expected)
    checks.append(Check(label + "reading_count", count_ok,
                        f"{len(labels)} prediction lines for {len(expected)} readings"))
    if params.get("min_accuracy") is not None:
        checks.append(_accuracy_check(labels, expected, classes, float(params["min_accuracy"]), label))
        return checks
    wrong = []
    for i, want in enumerate(expected):
        got = labels[i] if i < len(labels) else None
        if got != classes[want]:
            shown = "" if len(readings[i]) > 4 else " (r={}, g={}, b={})".format(*readings[i][:3])  # colour readings only
            wrong.append(f"reading {i}{shown}: expected {classes[want]}, printed {got or 'nothing'}")
    constant = len(set(labels)) == 1 and len(labels) > 1 and len(set(expected)) > 1
    mdetail = (f"{len(expected) - len(wrong)} of {len(expected)} readings classified as the reference model does"
               + (f"; every line printed the same class {labels[0]!r}" if constant else "")
               + (f"; {listed(wrong, 6, '; ')}" if wrong else ""))
    checks.append(Check(label + "predictions_match", not wrong and count_ok, mdetail))
    return checks


def _accuracy_check(labels: list[str], expected: list[int], classes: list[str], minimum: float, label: str) -> Check:
    """Printed classes against the true ones, as a share: no reading or class is named (the readings
    may be held out)."""
    right = sum(i < len(labels) and labels[i] == classes[want] for i, want in enumerate(expected))
    share = right / len(expected) if expected else 0.0
    return Check(label + "accuracy", share >= minimum and len(labels) == len(expected),
                 f"{right} of {len(expected)} readings printed as their true class ({share:.3f}; at least "
                 f"{minimum:g} required)")


def _category(failed: set[str], execution: ExecResult | None) -> str | None:
    if not failed:
        return None
    if "builds" in failed:
        output = "" if execution is None else execution.stdout + "\n" + execution.stderr
        return build_failure_category(output)
    if failed & {"flash_fits", "ram_fits"}:
        return Category.BUDGET_EXCEEDED
    if "finishes" in failed and execution is not None:
        return Category.TIMEOUT if execution.timed_out else Category.RUNTIME_ERROR
    if failed & {"prints_output", "ran"}:
        return Category.ARTIFACT_MISSING
    return Category.SEMANTIC_MISMATCH


def _verdict(name: str, checks: list[Check], execution, metrics: dict[str, float] | None = None) -> Verdict:
    return Verdict.from_checks(name, checks, _category({c.name for c in checks if not c.passed}, execution), metrics)


# --------------------------------------------------------------------------- ardsg_firmware


def ardsg_firmware(ctx: OracleContext) -> Verdict:
    """params: ``vectors`` (asset name of vectors.json), ``set`` (the set the loop's build
    replays, default visible), ``line_pattern``, ``baud`` (+ ``baud_tolerance``),
    ``require_run`` (default true), ``spec_baud`` (or the previous ``spec`` step's
    ``baud_rate``), ``hidden: {set: hidden, files: {workspace path: asset name}}``."""
    p = ctx.params
    execution = ctx.execution
    board = ctx.board
    checks: list[Check] = []
    if execution is None:
        raise HarnessError(Category.HARNESS_ERROR, "ardsg_firmware judges code steps (it needs an execution)")
    build = execution.isolation.get("build")
    if build is None:
        raise HarnessError(Category.HARNESS_ERROR, "the execution has no build report: run this step with a firmware executor "
                               "(arduino / arm-none-eabi)")
    built = build.get("returncode") == 0 and not build.get("timed_out")
    if built:
        checks.append(Check("builds", True, f"built with {build.get('tool')} in {build.get('duration_s', 0):.2f} s"))
    elif build.get("timed_out"):
        checks.append(Check("builds", False, "the build was killed at its time limit"))
    else:
        checks.append(Check("builds", False, "the build failed:\n" + _first_errors(execution.stderr + "\n" + execution.stdout),
                            restates_run=True))
        return _verdict("ardsg_firmware", checks, execution)

    flash, ram = build.get("flash_bytes"), build.get("ram_bytes")
    if board is None:
        raise HarnessError(Category.HARNESS_ERROR, "ardsg_firmware needs the case's board (hardware/<board>.yaml) for its budgets")
    if flash is None or ram is None:  # the executor's fault, never the generated code's
        raise HarnessError(Category.HARNESS_ERROR, f"the build reported no program size (tool {build.get('tool')})")
    flash_ok = flash <= board.model_flash_budget and (build.get("flash_max") is None or flash <= build["flash_max"])
    checks.append(Check("flash_fits", flash_ok, f"{flash} bytes of program flash; budget {_budget_text(board, 'flash')}"))
    ram_ok = ram <= board.model_ram_budget
    checks.append(Check("ram_fits", ram_ok, f"{ram} bytes of static RAM (globals); budget {_budget_text(board, 'ram')}"))
    # graded quality, never feedback; simavr's command line counts no cycles, so there is no cycles metric
    metrics = {"flash_bytes": float(flash), "ram_bytes": float(ram)}

    spec_baud = p.get("spec_baud")
    previous = ctx.steps
    if spec_baud is None and isinstance(previous.get(p.get("spec_step", "spec")), dict):
        spec_baud = previous[p.get("spec_step", "spec")].get("baud_rate")
    if spec_baud is not None and isinstance(ctx.answer, str):
        bauds = _serial_begin_bauds(ctx.answer)
        ok = bool(bauds) and all(b == int(spec_baud) for b in bauds)
        checks.append(Check("follows_spec", ok, f"Serial.begin({', '.join(map(str, bauds)) or '-'}) in the sketch; "
                                                f"the application spec says {spec_baud} baud"))

    run = execution.isolation.get("run")
    if run is None:
        if p.get("require_run", True):
            checks.append(Check("ran", False, "the firmware was built but not run (no simulator or board)"))
        return _verdict("ardsg_firmware", checks, execution, metrics)

    data = _vectors(ctx)
    classes = list(data["classes"])
    current = data["sets"][p.get("set", "visible")]
    checks += judge_run(execution, current["expected"], classes, current["readings"], p)

    hidden = p.get("hidden")
    if hidden and all(c.passed for c in checks):
        checks.append(_hidden_check(ctx, data, classes, hidden))
    return _verdict("ardsg_firmware", checks, execution, metrics)


def _hidden_check(ctx: OracleContext, data: dict, classes: list[str], hidden: dict) -> Check:
    name = hidden.get("set", "hidden")
    if name not in data["sets"]:
        raise HarnessError(Category.HARNESS_ERROR, f"hidden.set {name!r} is not a set of the vectors file")
    overrides = {}
    for dest, asset in (hidden.get("files") or {}).items():
        if asset not in ctx.assets:
            raise HarnessError(Category.HARNESS_ERROR, f"hidden.files.{dest}: {asset!r} is not an asset of the case")
        overrides[dest] = ctx.assets[asset]
    if ctx.run is None:
        raise HarnessError(Category.HARNESS_ERROR, "the hidden re-run needs OracleContext.run (the loop provides it)")
    with ctx.run(ctx.answer, {**ctx.inputs, **overrides}, "hidden-") as (rerun, _workdir):
        return _judge_hidden(rerun, data["sets"][name], classes, ctx.params)


def _judge_hidden(rerun: ExecResult, current: dict, classes: list[str], params: dict[str, Any]) -> Check:
    if rerun.isolation.get("phase") != "run":
        return Check("hidden_vectors", False, "the rebuild with the second set of readings failed: "
                     + _first_errors(rerun.stderr + "\n" + rerun.stdout))
    sub = judge_run(rerun, current["expected"], classes, current["readings"], params, label="hidden:")
    failed = [c for c in sub if not c.passed]
    n = len(current["expected"])
    if not failed:
        judged = next((c.detail for c in sub if c.name == "hidden:accuracy"), "all classified as the reference model does")
        return Check("hidden_vectors", True, f"rebuilt with {n} other readings: {judged} "
                                             f"({rerun.isolation['run'].get('duration_s', 0):.2f} s run)")
    return Check("hidden_vectors", False,
                 f"rebuilt with {n} other readings (never shown), the firmware does not behave like the model: "
                 + " | ".join(f"{c.name.split(':', 1)[1]}: {c.detail}" for c in failed))


# --------------------------------------------------------------------------- ardsg_app_spec


def _names(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        out = []
        for v in value:
            if isinstance(v, str):
                out.append(v)
            elif isinstance(v, dict) and isinstance(v.get("name"), str):
                out.append(v["name"])
        return out
    return []


def _shape_size(value) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        size = 1
        for v in value:
            size *= v
        return size
    return None


def ardsg_app_spec(ctx: OracleContext) -> Verdict:
    """The JSON application spec of the paper's step A::

        {"board": str, "sensors": [...], "libraries": [...], "classes": [...],
         "input_tensor": {"shape": [1, 3], "type": "float32"},
         "output_tensor": {"shape": [1, 3], "type": "float32"},
         "tensor_arena_size": int, "baud_rate": int}

    params: ``sensor`` (must be listed), ``libraries`` (each listed, case-insensitive
    substring), ``classes`` (exact order), ``input_size``/``output_size`` (element counts),
    ``min_arena`` (bytes; the arena must also fit the board's RAM budget), ``baud_rate``
    (when set, exactly this rate, else any standard rate)."""
    p = ctx.params
    spec = ctx.answer
    board = ctx.board
    checks: list[Check] = []
    is_obj = isinstance(spec, dict)
    checks.append(Check("spec_is_object", is_obj, "" if is_obj else f"expected a JSON object, got {type(spec).__name__}"))
    if not is_obj:
        return Verdict.from_checks("ardsg_app_spec", checks, Category.ARTIFACT_MISSING)
    required = ("board", "sensors", "libraries", "classes", "input_tensor", "output_tensor", "tensor_arena_size", "baud_rate")
    missing = [k for k in required if k not in spec]
    checks.append(Check("keys_present", not missing, f"missing keys: {missing}" if missing else ""))

    sensor = p.get("sensor", "APDS9960")
    sensors = [s.lower() for s in _names(spec.get("sensors"))]
    checks.append(Check("sensor_listed", any(sensor.lower() in s for s in sensors),
                        f"sensors {sensors or '(none)'}; the {sensor} colour sensor must be listed"))
    libraries = [s.lower() for s in _names(spec.get("libraries"))]
    absent = [lib for lib in p.get("libraries", []) if not any(lib.lower() in l for l in libraries)]
    checks.append(Check("libraries_listed", not absent,
                        f"libraries {libraries or '(none)'}; missing: {absent}" if absent else ""))
    want_classes = p.get("classes")
    if want_classes is not None:
        got = spec.get("classes")
        checks.append(Check("classes", got == list(want_classes), f"classes {got!r}; expected {list(want_classes)!r} in this order"))
    for key, want in (("input_tensor", p.get("input_size")), ("output_tensor", p.get("output_size"))):
        if want is None:
            continue
        tensor = spec.get(key)
        size = _shape_size(tensor.get("shape") if isinstance(tensor, dict) else tensor)
        checks.append(Check(f"{key}_size", size == int(want),
                            f"{key} shape {tensor.get('shape') if isinstance(tensor, dict) else tensor!r} has "
                            f"{size} elements; the model has {want}"))
    arena = spec.get("tensor_arena_size")
    arena_ok = isinstance(arena, int) and not isinstance(arena, bool) and arena >= int(p.get("min_arena", 1))
    budget = board.model_ram_budget if board is not None else None
    if arena_ok and budget is not None:
        arena_ok = arena <= budget
    checks.append(Check("arena_size", arena_ok,
                        f"tensor_arena_size {arena!r}; must be an integer of at least {p.get('min_arena', 1)} bytes"
                        + (f" and at most the RAM budget {budget}" if budget is not None else "")))
    baud = spec.get("baud_rate")
    want_baud = p.get("baud_rate")
    baud_ok = isinstance(baud, int) and (baud == int(want_baud) if want_baud is not None else baud in STANDARD_BAUDS)
    checks.append(Check("baud_rate", baud_ok, f"baud_rate {baud!r}; expected "
                        + (str(want_baud) if want_baud is not None else "a standard rate")))
    return Verdict.from_checks("ardsg_app_spec", checks, Category.SEMANTIC_MISMATCH)
