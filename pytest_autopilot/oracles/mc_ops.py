"""The op-level view of a converted TFLite model, and the MC checks that need it.

LiteRT's public API lists tensors and the model's inputs/outputs but not its operators; its
only op view is a private method that may change or vanish between releases. So the graph
is read from the ``.tflite`` flatbuffer itself with the ``tflite`` package (the generated
reader of the TFLite schema): operator codes, builtin op names, tensor types, each op's
inputs and outputs, for the primary subgraph (subgraph 0, the one LiteRT runs).

A model the reader cannot inspect is the harness's problem, never the model's: LiteRT has
already loaded it by then (it verifies the flatbuffer), so a failure here means the reader
is missing, too old for the schema, or disagrees with LiteRT -- a ``HarnessError``. The
checks therefore never see an empty op list standing in for "could not look", which would
read as "the model has no FULLY_CONNECTED op" and blame the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pytest_autopilot.core.errors import HarnessError, ToolchainMissing
from pytest_autopilot.core.records import Category, Check
from pytest_autopilot.core.util import listed

# ops whose input 1 is a weight tensor and input 2 (optional) a bias
WEIGHTED_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "CONV_3D", "BATCH_MATMUL")
INT8_OPERANDS = ("int8", "int32", "int64", "bool")  # int32/int64: biases, shapes, axes, indices
_CUSTOM = "CUSTOM"


@dataclass(frozen=True)
class Op:
    index: int  # position in the subgraph's operator list (LiteRT's node index)
    name: str  # the builtin op's name (FULLY_CONNECTED); a custom op's own code (FlexAddV2), as LiteRT names it
    builtin: bool
    inputs: tuple[int, ...]  # tensor indices; -1 for an omitted optional input
    outputs: tuple[int, ...]


@dataclass(frozen=True)
class Graph:
    ops: tuple[Op, ...]
    tensor_types: dict[int, str]  # tensor index -> numpy dtype name (int8, float32, ...)
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


def _fail(what: str) -> HarnessError:
    return HarnessError(Category.HARNESS_ERROR, f"mc_tflite: cannot inspect the model's operators ({what}); "
                                                "this is a harness problem, not a verdict on the model")


def inspect_model(data: bytes) -> Graph:
    """The primary subgraph of a ``.tflite`` flatbuffer; HarnessError when it cannot be read."""
    try:
        from tflite.BuiltinOperator import BuiltinOperator
        from tflite.Model import Model
        from tflite.TensorType import TensorType
    except ImportError:
        raise ToolchainMissing("the MC oracle reads TFLite graphs with the tflite package; install it with: "
                               "pip install 'tflite>=2.18'  (or: pip install \"pytest-autopilot[mc]\")") from None
    if len(data) < 8 or not Model.ModelBufferHasIdentifier(data, 0):
        raise _fail("no TFL3 file identifier")
    op_names = {code: name for name, code in vars(BuiltinOperator).items() if not name.startswith("_")}
    type_names = {code: name.lower() for name, code in vars(TensorType).items() if not name.startswith("_")}
    def count(n: int, what: str) -> int:  # a vector longer than the file: a corrupt length, never loop over it
        if not 0 <= n <= len(data) // 4:
            raise _fail(f"{what} count {n} does not fit a {len(data)}-byte file")
        return n

    try:
        model = Model.GetRootAs(data, 0)
        if count(model.SubgraphsLength(), "subgraph") < 1:
            raise _fail("the model has no subgraph")
        codes = []
        for k in range(count(model.OperatorCodesLength(), "operator code")):
            oc = model.OperatorCodes(k)
            code = oc.BuiltinCode()
            if code == BuiltinOperator.CUSTOM:
                custom = oc.CustomCode()
                codes.append(((custom.decode("utf-8") if custom else _CUSTOM), False))
            elif code in op_names:
                codes.append((op_names[code], True))
            else:
                raise _fail(f"builtin operator code {code} is unknown to the tflite package; upgrade it")
        sub = model.Subgraphs(0)
        n_tensors = count(sub.TensorsLength(), "tensor")
        types = {}
        for t in range(n_tensors):
            code = sub.Tensors(t).Type()
            if code not in type_names:
                raise _fail(f"tensor {t} has type code {code}, unknown to the tflite package")
            types[t] = type_names[code]
        ops = []
        for k in range(count(sub.OperatorsLength(), "operator")):
            op = sub.Operators(k)
            index = op.OpcodeIndex()
            if not 0 <= index < len(codes):
                raise _fail(f"op {k} names operator code {index} of {len(codes)}")
            ins = tuple(int(op.Inputs(j)) for j in range(count(op.InputsLength(), "op input")))
            outs = tuple(int(op.Outputs(j)) for j in range(count(op.OutputsLength(), "op output")))
            if any(not -1 <= i < n_tensors for i in ins + outs):
                raise _fail(f"op {k} refers to a tensor outside 0..{n_tensors - 1}")
            name, builtin = codes[index]
            ops.append(Op(k, name, builtin, ins, outs))
        inputs = tuple(int(sub.Inputs(j)) for j in range(count(sub.InputsLength(), "input")))
        outputs = tuple(int(sub.Outputs(j)) for j in range(count(sub.OutputsLength(), "output")))
    except HarnessError:
        raise
    except Exception as exc:  # noqa: BLE001 -- a malformed buffer raises anything from struct.error to IndexError
        raise _fail(f"{type(exc).__name__}: {exc}"[:300]) from None
    return Graph(tuple(ops), types, inputs, outputs)


def inspect_loaded(path: Path, interpreter) -> Graph:
    """The graph of the model LiteRT loaded from ``path``, cross-checked against LiteRT's own
    view of the inputs and outputs: a reader that disagrees with the runtime is not trusted."""
    graph = inspect_model(Path(path).read_bytes())
    want_in = tuple(int(d["index"]) for d in interpreter.get_input_details())
    want_out = tuple(int(d["index"]) for d in interpreter.get_output_details())
    if (graph.inputs, graph.outputs) != (want_in, want_out):
        raise _fail(f"the flatbuffer's inputs {list(graph.inputs)} / outputs {list(graph.outputs)} differ from "
                    f"LiteRT's {list(want_in)} / {list(want_out)}")
    return graph


def weights_check(graph: Graph, integer_bias: bool = True) -> Check:
    """``integer_weights``: every weighted op takes int8 weights and an int32/int64 bias (full
    integer quantization). ``integer_bias=False`` is ``int8_weights``: int8 weights, any bias --
    what dynamic-range quantization produces too (its hybrid ops keep float biases)."""
    name = "integer_weights" if integer_bias else "int8_weights"
    dtypes = graph.tensor_types
    bad, seen = [], 0
    for op in graph.ops:
        if op.name not in WEIGHTED_OPS:
            continue
        seen += 1
        ins = op.inputs
        weight = dtypes.get(ins[1]) if len(ins) > 1 and ins[1] >= 0 else None
        bias = dtypes.get(ins[2]) if len(ins) > 2 and ins[2] >= 0 else None
        if weight != "int8":
            bad.append(f"op {op.index} {op.name} takes {weight} weights")
        elif integer_bias and bias is not None and bias not in ("int32", "int64"):
            bad.append(f"op {op.index} {op.name} takes a {bias} bias")
    if not seen:
        return Check(name, False, "the model has no FULLY_CONNECTED / CONV op at all: it is not the Keras model")
    wanted = ("weights must be int8 (bias int32) -- full integer post-training quantization with the calibration data"
              if integer_bias else "weights must be int8 -- post-training quantization of the weights")
    return Check(name, not bad, f"{wanted}: {listed(bad, sep='; ')}" if bad else f"{seen} weighted op(s), all int8 weights")


def ops_check(graph: Graph, mode: str) -> Check:
    """``int8_ops_only`` (mode int8) / ``integer_ops`` (mode integer_core): builtin ops whose
    operands are all int8 (int32/int64/bool for biases, shapes, indices); integer_core lets
    the QUANTIZE / DEQUANTIZE that convert the model's own input or output through."""
    name = "int8_ops_only" if mode == "int8" else "integer_ops"
    io_tensors = set(graph.inputs) | set(graph.outputs)
    bad = []
    for op in graph.ops:
        if not op.builtin or op.name == "DELEGATE":
            bad.append(f"op {op.index} {op.name} is not a TFLite builtin op")
            continue
        ins = [i for i in op.inputs if i >= 0]
        outs = [i for i in op.outputs if i >= 0]
        if mode == "integer_core" and op.name in ("QUANTIZE", "DEQUANTIZE") and (set(ins) | set(outs)) & io_tensors:
            continue  # converts the model's own float / uint8 input or output
        types = [graph.tensor_types.get(i, "?") for i in ins + outs]
        odd = sorted({t for t in types if t not in INT8_OPERANDS})
        if odd:
            bad.append(f"op {op.index} {op.name} has {'/'.join(odd)} operands")
    wanted = ("every op must compute in int8 (TFLITE_BUILTINS_INT8 with int8 input and output)" if mode == "int8" else
              "every op except the QUANTIZE/DEQUANTIZE of the model's own input/output must compute in int8")
    return Check(name, not bad, f"{wanted}: {listed(bad, sep='; ')}" if bad else f"{len(graph.ops)} ops, all integer")
