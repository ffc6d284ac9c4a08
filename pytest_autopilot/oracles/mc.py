"""Strict oracle of the MC (model conversion: Keras -> TFLite) stage.

``mc_tflite`` judges the ``.tflite`` file a program wrote, one named check per property:

``exit_code_0``            the program finished cleanly (when it ran)
``model_at_path``          the file is at the requested path inside the work dir (if it is
                           missing but a TFLite file lies elsewhere, the detail names it)
``model_loads``            LiteRT (``ai_edge_litert``) loads it and allocates its tensors
``io_shapes``              one input taking one held-out row, one output with one score per class
``input_dtype`` / ``output_dtype``              as the case asks
``input_quantization`` / ``output_quantization`` an integer tensor has one finite scale > 0
                           and a zero point inside its type's range; a float tensor none
``integer_weights``        (``integer_weights: true``) every weighted op (FULLY_CONNECTED,
                           CONV_2D, DEPTHWISE_CONV_2D, ...) takes int8 weights and an int32
                           bias: no float32/float16 weight tensor feeds them
``int8_weights``           (``int8_weights: true``) every weighted op takes int8 weights, whatever
                           its bias: dynamic-range quantization passes (its hybrid ops keep
                           float biases and activations), a float conversion does not
``int8_ops_only``          (``ops: int8``) every operand of every op is int8 (int32/int64 for
                           biases, shapes, indices), builtin ops only -- what
                           ``TFLITE_BUILTINS_INT8`` with int8 I/O produces
``integer_ops``            (``ops: integer_core``) the same, except the QUANTIZE / DEQUANTIZE
                           ops that convert the model's own input / output tensors
                           (these three read the graph from the flatbuffer, ``oracles.mc_ops``;
                           a model that cannot be inspected there is a harness error)
``agreement``              on the held-out rows, top-1 of the converted model equals the
                           Keras model's top-1 on at least ``min_agreement`` of them
``accuracy_drop``          Keras held-out accuracy minus the converted model's <= ``max_accuracy_drop``
``accuracy``               (``min_accuracy``, a model the program trained itself: no Keras model to
                           agree with) top-1 equals the held-out label on at least that share of
                           rows; ``agreement`` and ``accuracy_drop`` are then not checked
``fits_flash``             file size <= the board's model flash budget (``ctx.board``)
                           and <= ``max_bytes`` when given
``tflm_runs``              (``tflm``) TensorFlow Lite Micro runs it (sandboxed child processes,
                           see ``oracles.mc_tflm`` and ``oracles.tflm_probe``); the detail gives the smallest
                           working arena found by binary search
``tflm_fits_ram``          that arena <= the board's model RAM budget
``tflm_matches_litert``    TFLM's raw outputs equal LiteRT's on a few held-out rows (within
                           ``tflm.tolerance`` quantization steps)

Inputs: the held-out set is a case asset (``heldout``: asset name of an ``.npz`` with ``x``
float32 model-ready rows, ``y`` int labels and ``keras_probs``, the Keras model's outputs,
written by ``scripts/train_mc_models.py``; with ``min_accuracy``, ``x`` and ``y`` suffice, ``y``
holding every class), so no TensorFlow is imported here. Integer
inputs are quantized with the model's *own* input scale and zero point; integer outputs
are dequantized with its output parameters.

params (defaults): ``model`` (required: path relative to the work dir); ``heldout``
(required: asset name); ``input_dtype`` / ``output_dtype`` (required: float32, int8, uint8
or int16); ``integer_weights`` (false); ``int8_weights`` (false); ``ops`` (``any`` | ``integer_core`` | ``int8``, default
any); ``min_agreement`` (0.95); ``max_accuracy_drop`` (0.03); ``max_bytes`` (none); ``tflm``
(false, or ``{rows: 8, tolerance: 1, max_arena: 16777216}``: rows compared with LiteRT,
allowed difference in output quantization steps, largest arena tried).

Category: ``artifact_missing`` when the model is absent or does not load, ``runtime_error``
/ ``timeout`` / ``resource_limit`` when the program did not finish cleanly, else
``semantic_mismatch``. Everything in a failing check's detail is deterministic (it goes
into repair prompts, which replays compare byte for byte).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pytest_autopilot.core.errors import HarnessError
from pytest_autopilot.core.records import Category, Check, Verdict
from pytest_autopilot.oracles import OracleContext, categorised_verdict, exit_check
from pytest_autopilot.oracles.mc_ops import inspect_loaded, ops_check, weights_check
from pytest_autopilot.oracles.mc_tflm import tflm_checks

_DTYPES = ("float32", "int8", "uint8", "int16")
_INT_RANGE = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767), "int32": (-2**31, 2**31 - 1)}
_DEFAULTS: dict[str, Any] = {
    "integer_weights": False,
    "int8_weights": False,
    "ops": "any",
    "min_agreement": 0.95,
    "max_accuracy_drop": 0.03,
    "min_accuracy": None,
    "max_bytes": None,
    "tflm": False,
}
_TFLM_DEFAULTS = {"rows": 8, "tolerance": 1, "max_arena": 16 * 2**20}
_ARTIFACT = {"model_at_path", "model_loads"}


def _params(raw: dict[str, Any]) -> dict[str, Any]:
    p = {**_DEFAULTS, **raw}
    unknown = set(p) - set(_DEFAULTS) - {"model", "heldout", "input_dtype", "output_dtype"}
    if unknown:
        raise HarnessError(Category.HARNESS_ERROR, f"mc_tflite: unknown params {sorted(unknown)}")
    for key in ("model", "heldout", "input_dtype", "output_dtype"):
        if not p.get(key):
            raise HarnessError(Category.HARNESS_ERROR, f"mc_tflite: params.{key} is required")
    for key in ("input_dtype", "output_dtype"):
        if p[key] not in _DTYPES:
            raise HarnessError(Category.HARNESS_ERROR, f"mc_tflite: params.{key} must be one of {_DTYPES}, got {p[key]!r}")
    if p["ops"] not in ("any", "integer_core", "int8"):
        raise HarnessError(Category.HARNESS_ERROR, f"mc_tflite: params.ops must be any, integer_core or int8, got {p['ops']!r}")
    if p["tflm"]:
        extra = set(p["tflm"] if isinstance(p["tflm"], dict) else {}) - set(_TFLM_DEFAULTS)
        if extra:
            raise HarnessError(Category.HARNESS_ERROR, f"mc_tflite: unknown params.tflm keys {sorted(extra)}")
        p["tflm"] = {**_TFLM_DEFAULTS, **(p["tflm"] if isinstance(p["tflm"], dict) else {})}
    return p


# --------------------------------------------------------------------------- helpers


def _verdict(checks: list[Check], execution=None) -> Verdict:
    return categorised_verdict("mc_tflite", checks, _ARTIFACT, execution)


def _looks_like_tflite(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError:
        return False
    return len(head) == 8 and head[4:8] == b"TFL3"


def _other_models(root: Path, wanted: str, workspace: dict[str, str]) -> list[str]:
    """TFLite files (by extension or by the TFL3 identifier) elsewhere in the work dir."""
    found = []
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if rel == wanted or rel in workspace or not path.is_file() or path.is_symlink():
            continue
        if path.suffix == ".tflite" or (path.stat().st_size < 64 * 2**20 and _looks_like_tflite(path)):
            found.append(rel)
    return found


def _model_check(ctx: OracleContext, rel: str) -> tuple[Check, Path | None]:
    root = ctx.workdir.resolve()
    rp = Path(rel)
    if rp.is_absolute() or ".." in rp.parts:
        raise HarnessError(Category.HARNESS_ERROR, f"mc_tflite: params.model {rel!r} must be a relative path inside the work dir")
    path = (root / rp).resolve()
    if not path.is_relative_to(root):  # a symlink out of the work dir: never read it
        return Check("model_at_path", False, f"{rel} is a link to a file outside the working directory; "
                     f"write the model file itself to {rel}"), None
    if path.is_file() and path.stat().st_size > 0:
        return Check("model_at_path", True, f"{rel}: {path.stat().st_size} bytes"), path
    others = _other_models(root, str(rp), ctx.workspace)
    what = "is empty" if path.is_file() else "was not written"
    detail = f"{rel} {what}"
    if others:
        shown = ", ".join(others[:5]) + (f" (+{len(others) - 5} more)" if len(others) > 5 else "")
        detail += f"; a TFLite model was written elsewhere in the working directory instead: {shown}. " \
                  f"Write it to exactly {rel}"
    else:
        detail += "; no .tflite file was written anywhere in the working directory"
    return Check("model_at_path", False, detail), None


def _dtype_name(dtype) -> str:
    import numpy as np

    return np.dtype(dtype).name


def _quant(detail: dict) -> tuple[list[float], list[int]]:
    qp = detail.get("quantization_parameters") or {}
    scales = [float(s) for s in qp.get("scales", [])]
    zps = [int(z) for z in qp.get("zero_points", [])]
    if not scales:
        scale, zp = detail.get("quantization", (0.0, 0))
        if scale:
            scales, zps = [float(scale)], [int(zp)]
    return scales, zps


def _quant_check(name: str, detail: dict) -> Check:
    dtype = _dtype_name(detail["dtype"])
    scales, zps = _quant(detail)
    if dtype.startswith("float"):
        ok = not scales or all(s == 0 for s in scales)
        return Check(name, ok, "float tensor, not quantized" if ok else f"a {dtype} tensor carries quantization scales {scales}")
    if dtype not in _INT_RANGE:
        return Check(name, False, f"unexpected tensor type {dtype}")
    lo, hi = _INT_RANGE[dtype]
    problems = []
    if len(scales) != 1 or len(zps) != 1:
        problems.append(f"expected one per-tensor scale and zero point, got scales {scales} and zero points {zps}")
    else:
        if not (math.isfinite(scales[0]) and scales[0] > 0):
            problems.append(f"scale {scales[0]} is not a finite number > 0")
        if not lo <= zps[0] <= hi:
            problems.append(f"zero point {zps[0]} is outside the {dtype} range [{lo}, {hi}]")
    return Check(name, not problems, "; ".join(problems) if problems else f"{dtype}, scale {scales[0]:.6g}, zero point {zps[0]}")


def _prepare_rows(x, detail: dict):
    """Held-out float rows as the model's input: quantized with its own parameters when integer."""
    import numpy as np

    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return x.astype(dtype)
    scales, zps = _quant(detail)
    scale, zp = (scales[0], zps[0]) if scales and scales[0] > 0 else (1.0, 0)
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zp, info.min, info.max).astype(dtype)


def _dequantize(raw, detail: dict):
    import numpy as np

    if np.dtype(detail["dtype"]).kind == "f":
        return raw.astype(np.float32)
    scales, zps = _quant(detail)
    scale, zp = (scales[0], zps[0]) if scales and scales[0] > 0 else (1.0, 0)
    return (raw.astype(np.float32) - zp) * scale


def _infer(interpreter, rows, in_detail, out_detail):
    import numpy as np

    raw = []
    for row in rows:
        interpreter.set_tensor(in_detail["index"], row[None, ...])
        interpreter.invoke()
        raw.append(interpreter.get_tensor(out_detail["index"])[0].copy())
    return np.stack(raw)


def _shape_check(interpreter, x, probs) -> tuple[Check, bool]:
    """One input accepting a held-out row (batch 1), one output with a score per class."""
    ins, outs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(ins) != 1 or len(outs) != 1:
        return Check("io_shapes", False, f"expected 1 input and 1 output, got {len(ins)} and {len(outs)}"), False
    want_in = [1, *x.shape[1:]]
    shape = [int(s) for s in ins[0]["shape"]]
    if shape != want_in:
        signature = [int(s) for s in ins[0].get("shape_signature", shape)]
        fits = len(signature) == len(want_in) and all(s in (-1, w) for s, w in zip(signature, want_in))
        if not fits:
            return Check("io_shapes", False, f"input shape {shape}, expected {want_in} (one row of the data)"), False
        interpreter.resize_tensor_input(ins[0]["index"], want_in)
        interpreter.allocate_tensors()
    out_shape = [int(s) for s in interpreter.get_output_details()[0]["shape"]]
    if out_shape != [1, probs.shape[1]]:
        return Check("io_shapes", False, f"output shape {out_shape}, expected [1, {probs.shape[1]}] (one score per class)"), False
    return Check("io_shapes", True, f"input {want_in}, output {out_shape}"), True


# --------------------------------------------------------------------------- the oracle


def mc_tflite(ctx: OracleContext) -> Verdict:
    """A converted TFLite model: where, what types, how integer, how accurate, how big, and
    whether TFLM runs it within the board's RAM (see the module docstring for the checks)."""
    import numpy as np

    p = _params(ctx.params)
    if p["heldout"] not in ctx.assets:
        raise HarnessError(Category.HARNESS_ERROR, f"mc_tflite: params.heldout {p['heldout']!r} is not an asset of the case")
    board = ctx.board
    with np.load(ctx.assets[p["heldout"]], allow_pickle=False) as data:
        x, y = data["x"].astype(np.float32), data["y"].astype(np.int64)
        # a model the program trained has no Keras outputs to agree with: only the class count matters
        probs = (np.eye(int(y.max()) + 1, dtype=np.float32)[y] if p["min_accuracy"] is not None
                 else data["keras_probs"].astype(np.float32))

    checks: list[Check] = []
    ran = exit_check(ctx.execution)
    if ran:
        checks.append(ran)
    check, path = _model_check(ctx, p["model"])
    checks.append(check)
    interpreter = _loaded(path, p["model"], checks) if path is not None else None
    if interpreter is None:
        return _verdict(checks, ctx.execution)

    shape_check, shapes_ok = _shape_check(interpreter, x, probs)
    checks.append(shape_check)
    in_detail, out_detail = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    checks += _tensor_checks(in_detail, out_detail, path, interpreter, p)
    metrics: dict[str, float] = {}  # graded quality (never feedback): reported over the runs that passed
    rows = raw = None
    if shapes_ok:
        rows = _prepare_rows(x, in_detail)
        raw = _accuracy_checks(interpreter, rows, in_detail, out_detail, y, probs, p, checks, metrics)
    size = path.stat().st_size
    metrics["model_bytes"] = float(size)
    flash = _flash_check(size, board, p)
    if flash is not None:
        checks.append(flash)

    if p["tflm"] and raw is not None:
        checks.extend(tflm_checks(ctx, path, rows, raw, out_detail, p["tflm"], board))
    elif p["tflm"]:
        checks.append(Check("tflm_runs", False, "not tried: the model's input/output shapes do not fit the data"))
    verdict = _verdict(checks, ctx.execution)
    verdict.metrics.update(metrics)
    return verdict


def _loaded(path, model: str, checks: list[Check]):
    """The model in a LiteRT interpreter with its tensors allocated (``model_loads``), or None."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    try:
        # Without default delegates: XNNPACK would replace the ops with DELEGATE nodes, hiding
        # the graph the checks look at (and the MCU has no XNNPACK either).
        interpreter = Interpreter(model_path=str(path), num_threads=1,
                                  experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        interpreter.allocate_tensors()
    except Exception as exc:  # noqa: BLE001 -- any failure to load is the answer's
        message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        checks.append(Check("model_loads", False, f"LiteRT cannot load {model}: {type(exc).__name__}: {message}"))
        return None
    checks.append(Check("model_loads", True, "LiteRT loads it and allocates its tensors"))
    return interpreter


def _tensor_checks(in_detail, out_detail, path, interpreter, p: dict) -> list[Check]:
    """The input and output types and quantization, then (when asked) the weights and the ops."""
    checks = []
    for side, detail in (("input", in_detail), ("output", out_detail)):
        got, want = _dtype_name(detail["dtype"]), p[f"{side}_dtype"]
        checks.append(Check(f"{side}_dtype", got == want, f"{side} tensor is {got}" if got == want else
                            f"the model's {side} tensor is {got}; the task asks for {want}"))
        checks.append(_quant_check(f"{side}_quantization", detail))
    if p["integer_weights"] or p["int8_weights"] or p["ops"] != "any":
        graph = inspect_loaded(path, interpreter)  # HarnessError when it cannot: never a verdict on the model
        if p["integer_weights"]:
            checks.append(weights_check(graph))
        if p["int8_weights"]:
            checks.append(weights_check(graph, integer_bias=False))
        if p["ops"] != "any":
            checks.append(ops_check(graph, p["ops"]))
    return checks


def _accuracy_checks(interpreter, rows, in_detail, out_detail, y, probs, p: dict, checks: list[Check],
                     metrics: dict[str, float]):
    """``agreement`` with the Keras model and ``accuracy_drop`` on the held-out rows (appended to
    ``checks``, the graded numbers to ``metrics``); the raw outputs, or None when inference failed."""
    import numpy as np

    try:
        raw = _infer(interpreter, rows, in_detail, out_detail)
    except Exception as exc:  # noqa: BLE001
        checks.append(Check("agreement", False, f"LiteRT fails to run the model on a held-out row: {type(exc).__name__}: {exc}"[:500]))
        return None
    scores = _dequantize(raw, out_detail)
    if p["min_accuracy"] is not None:
        checks.append(_own_accuracy(scores.argmax(axis=1), y, float(p["min_accuracy"]), metrics))
        return raw
    top, keras_top = scores.argmax(axis=1), probs.argmax(axis=1)
    agree = float((top == keras_top).mean())
    n = len(y)
    ok = agree >= float(p["min_agreement"])
    text = (f"top-1 agrees with the Keras model on {int((top == keras_top).sum())}/{n} held-out rows "
            f"({agree:.3f}; at least {float(p['min_agreement']):g} required)")
    if ok:  # float noise stays out of failing details (repair prompts must replay byte for byte)
        text += f"; mean |score - Keras probability| {float(np.abs(scores - probs).mean()):.4f}"
    else:
        text += "; the converted model does not compute what the given Keras model computes: convert that trained model itself"
    checks.append(Check("agreement", ok, text))
    acc_k, acc_t = float((keras_top == y).mean()), float((top == y).mean())
    drop = acc_k - acc_t
    metrics.update(agreement=agree, heldout_accuracy=acc_t)
    checks.append(Check("accuracy_drop", drop <= float(p["max_accuracy_drop"]) + 1e-12,
                        f"held-out accuracy {acc_t:.3f} vs Keras {acc_k:.3f}: drop {drop:.3f} "
                        f"(at most {float(p['max_accuracy_drop']):g} allowed)"))
    return raw


def _own_accuracy(top, y, minimum: float, metrics: dict[str, float]) -> Check:
    """``accuracy`` of a model the program trained itself: its top-1 against the held-out labels."""
    right = int((top == y).sum())
    metrics["heldout_accuracy"] = right / len(y)
    return Check("accuracy", right / len(y) >= minimum, f"top-1 is the right class for {right}/{len(y)} held-out "
                 f"rows ({right / len(y):.3f}; at least {minimum:g} required)")


def _flash_check(size: int, board, p: dict) -> Check | None:
    """``fits_flash``: the model's bytes within the board's model flash budget and the case's
    ``max_bytes``; None when neither applies."""
    limits = []
    if board is not None:
        limits.append((board.model_flash_budget, f"the model flash budget of board {board.name} "
                       f"({board.memory.flash_kb:g} KB flash minus {board.memory.reserved_flash_kb:g} KB reserved)"))
    if p["max_bytes"]:
        limits.append((int(p["max_bytes"]), "the case's max_bytes"))
    if not limits:
        return None
    over = [f"{what} is {budget} bytes" for budget, what in limits if size > budget]
    return Check("fits_flash", not over,
                 f"{size} bytes; " + ("; ".join(over) if over else
                                      "within " + " and ".join(f"{b} bytes ({w})" for b, w in limits)))
