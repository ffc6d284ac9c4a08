"""Oracle names and params checked at collection by each oracle's pydantic model
(``oracles.BUILTIN_PARAMS``, no oracle module imported), and the built-in models kept true to
what each oracle reads and to its defaults."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from pytest_autopilot.cases.case_checks import oracle_problems
from pytest_autopilot.cases.spec import load_case
from pytest_autopilot.loop.registries import Registries
from pytest_autopilot.oracles import BUILTIN, BUILTIN_PARAMS, params_model
from pytest_autopilot.oracles.params import OracleParams

ROOT = Path(__file__).parents[2]
MODULES = sorted({target.partition(":")[0] for target in BUILTIN.values()})  # the built-in oracles' modules


def _problem(name, params, case=None, registries=None):
    """The first problem collection reports for an oracle name and its params, or None."""
    found = oracle_problems(registries or Registries(), name, params, case)
    return found[0] if found else None


@pytest.mark.parametrize("name, params, expected", [
    ("dp_clean_split", {"label": "Fruit"}, None),
    ("dp_clen_split", {}, ("name", "(or register one in conftest.py); did you mean 'dp_clean_split'?")),
    ("no_such_thing", {}, ("name", "unknown oracle 'no_such_thing'; known: ardsg_app_spec, ardsg_firmware")),
    ("dp_clean_split", {"lable": "Fruit"}, ("params.lable", "not a param of oracle dp_clean_split; did you mean 'label'?")),
    ("dp_clean_split", {"colour": 1},
     ("params.colour", "not a param of oracle dp_clean_split; remove it or check its spelling (known: input, train")),
    ("dp_clean_split", {"test_fraction": "0.2"}, ("params.test_fraction", "Input should be a valid number, got '0.2'")),
    ("dp_clean_split", {"check_determinism": "false"}, ("params.check_determinism", "Input should be a valid boolean")),
    ("mc_tflite", {"model": "m.tflite", "heldout": "h", "input_dtype": "int8"},
     ("params.output_dtype", "required by oracle mc_tflite; add it")),
    ("mc_tflite", {"model": "m.tflite", "heldout": "h", "input_dtype": "int8", "output_dtype": "uint9"},
     ("params.output_dtype", "Input should be 'float32', 'int8', 'uint8' or 'int16', got 'uint9'")),
    ("mc_tflite", {"model": "m.tflite", "heldout": "h", "input_dtype": "int8", "output_dtype": "int8",
                   "tflm": {"rows": 8, "tolernce": 1}}, ("params.tflm.tolernce", "unknown field; did you mean 'tolerance'?")),
    ("dp_plan", {"required": {"split": {"keywords": ["split"], "wher": "name"}}},
     ("params.required.split.wher", "unknown field; did you mean 'where'?")),
    ("ardsg_firmware", {"line_pattern": r"^class: \S+$"}, ("params.line_pattern", "needs a group capturing the class")),
])
def test_the_registry_names_the_field_and_the_fix(name, params, expected):
    problem = _problem(name, params)
    if expected is None:
        assert problem is None
    else:
        assert problem[0] == expected[0] and expected[1] in problem[1], problem


@pytest.mark.parametrize("params, expected", [
    ({"files": {"out.txt": {"match": "^ok"}}}, ("params.files.out.txt.match", "unknown field; did you mean 'matches'?")),
    ({"files": {"out.txt": "^ok"}}, ("params.files.out.txt", "got '^ok'; give {equals: text} or {matches: regex}")),
    ({"file": {"out.txt": {}}}, ("params.file", "not a param of oracle output_files; did you mean 'files'?")),
    ({"files": {}}, ("params.files", "names no file, so nothing would be checked")),
    ({"files": {"out.txt": {"matches": "(ok"}}}, ("params.files.out.txt.matches", "'(ok' is not a regular expression")),
    ({"files": {"../out.txt": {}}}, ("params.files.../out.txt", "must be a relative path inside the work dir")),
    ({"files": {"out.txt": {"equals": 42}, "log.txt": None, "x.txt": {"matches": "^x$"}}}, None),
])
def test_output_files_rejects_what_it_used_to_accept_silently(params, expected):
    """``match:`` for ``matches:`` (existence only), a bare pattern for a mapping and an empty
    ``files`` all passed; each is now a collection error."""
    problem = _problem("output_files", params)
    assert (problem is None) if expected is None else (problem[0] == expected[0] and expected[1] in problem[1]), problem


def test_params_naming_the_case_s_files_are_checked_against_the_case():
    case = {"assets": ["model", "heldout"], "workspace": ["model.keras"]}
    mc = {"model": "m.tflite", "heldout": "held_out", "input_dtype": "int8", "output_dtype": "int8"}
    assert _problem("mc_tflite", mc, case) == (
        "params.heldout", "'held_out' is not an asset of the case; name one of: heldout, model")
    assert _problem("mc_tflite", mc) is None  # without the case only the shape is checked
    vision = {"model": "m.tflite", "labels": "l.txt", "video": "v.mp4", "output_video": "out/a.mp4"}
    problem = _problem("vision_detection", vision, {"assets": [], "workspace": ["m.tflite", "l.txt"]})
    assert problem == ("params", "video 'v.mp4' is not laid out in the work dir: add it to the case's workspace "
                                 "or to external_inputs.workspace")


class StrictParams(OracleParams):
    expected: int


def test_a_conftest_oracle_is_checked_only_when_it_declares_a_model():
    registry = Registries()  # what the conftest hook receives
    registry.oracle("free", lambda ctx: None)
    registry.oracle("model", lambda ctx: None, params=StrictParams)
    registry.oracle("lazy", lambda ctx: None, params=f"{__name__}:StrictParams")
    registry.oracle("names", lambda ctx: None, params=["expected"])
    assert _problem("free", {"anything": 1}, registries=registry) is None
    for name in ("model", "lazy"):
        assert _problem(name, {"expected": 1}, registries=registry) is None
        assert _problem(name, {"expected": "1"}, registries=registry) == (
            "params.expected", "Input should be a valid integer, got '1'")
        assert _problem(name, {}, registries=registry) == ("params.expected", f"required by oracle {name}; add it")
    assert _problem("names", {"expected": "any type"}, registries=registry) is None
    assert _problem("names", {"expcted": 1}, registries=registry) == (
        "params.expcted", "not a param of oracle names; did you mean 'expected'?")
    assert {"free", "dp_plan"} <= set(registry.oracles.names())
    registry.oracle("dp_plan", lambda ctx: None)  # a conftest's override reads its own params
    assert _problem("dp_plan", {"anything": 1}, registries=registry) is None


def test_checking_names_and_params_imports_only_the_param_models():
    code = ("import sys\nfrom pytest_autopilot.cases.case_checks import oracle_problems\n"
            "from pytest_autopilot.loop.registries import Registries\n"
            "r = Registries(); r.oracles.names(); oracle_problems(r, 'dp_operation', {'label': 'x'})\n"
            "[r.oracle_params.get(n) for n in r.oracle_params.names()]\n"
            "heavy = ('pandas', 'numpy', 'tensorflow', 'hypothesis', 'cv2')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or "
            "m.startswith('pytest_autopilot.oracles.') and not m.endswith('params')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _registered(module: str) -> list[str]:
    return [name for name, target in BUILTIN.items() if target.partition(":")[0] == module]


def _params_read(module: str) -> dict[str, object]:
    """Keys read from a params mapping (``p``, ``params``, ``ctx.params``) anywhere in the module,
    with the literal default of a ``.get(key, default)`` (``...`` when there is none or it is no literal)."""
    def is_params(node) -> bool:
        return (isinstance(node, ast.Name) and node.id in ("p", "params")) or (
            isinstance(node, ast.Attribute) and node.attr == "params")

    keys: dict[str, object] = {}
    for node in ast.walk(ast.parse(Path(importlib.import_module(module).__file__).read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                and is_params(node.func.value) and node.args and isinstance(node.args[0], ast.Constant):
            try:
                default = ast.literal_eval(node.args[1]) if len(node.args) > 1 else ...
            except ValueError:  # a module constant: not compared
                default = ...
            keys.setdefault(node.args[0].value, default)
        elif isinstance(node, ast.Subscript) and is_params(node.value) and isinstance(node.slice, ast.Constant):
            keys.setdefault(node.slice.value, ...)
        elif isinstance(node, ast.Compare) and isinstance(node.left, ast.Constant) and is_params(node.comparators[0]):
            keys.setdefault(node.left.value, ...)
    return keys


def _model(name: str) -> type[BaseModel]:
    return params_model(BUILTIN_PARAMS[name])


def _defaults(model: type[BaseModel]) -> dict[str, object]:
    return {name: (f.default.model_dump() if isinstance(f.default, BaseModel) else f.get_default(call_default_factory=True))
            for name, f in model.model_fields.items() if not f.is_required()}


def test_every_builtin_oracle_has_a_params_model_and_resolves():
    assert sorted(BUILTIN) == sorted(BUILTIN_PARAMS)
    registries = Registries()
    for name in BUILTIN_PARAMS:
        assert issubclass(_model(name), BaseModel), name
        assert callable(registries.oracles.get(name)), name


# dp_reference reads its params through its model (DpReferenceParams.model_validate), so they agree by construction
@pytest.mark.parametrize("module", [m for m in MODULES
                                    if not m.endswith(("mc", "vision", "dp_clean_split", "dp_reference"))])
def test_the_models_fields_and_defaults_are_what_the_module_reads(module):
    read = _params_read(module)
    models = [_model(name) for name in _registered(module)]
    assert set(read) == set().union(*(m.model_fields for m in models))
    defaults = {k: v for m in models for k, v in _defaults(m).items()}
    for key, default in read.items():
        if default is not ... and key in defaults:
            assert defaults[key] == default, key


def test_the_models_match_the_modules_own_tables():
    from pytest_autopilot.oracles import dp_plan, dp_split, mc, vision

    assert _defaults(_model("dp_plan"))["name_pattern"] == dp_plan._SNAKE
    assert _defaults(_model("dp_clean_split")) == dp_split._CLEAN_DEFAULTS
    mc_model = _model("mc_tflite")
    required = {n for n, f in mc_model.model_fields.items() if f.is_required()}
    assert required == {"model", "heldout", "input_dtype", "output_dtype"}
    assert set(mc_model.model_fields) == set(mc._DEFAULTS) | required
    assert {**_defaults(mc_model), "tflm": False} == mc._DEFAULTS  # the model's None is the oracle's false
    assert _defaults(mc_model.model_fields["tflm"].annotation.__args__[0]) == mc._TFLM_DEFAULTS
    vision_model = _model("vision_detection")
    assert {n for n, f in vision_model.model_fields.items() if f.is_required()} == set(vision._REQUIRED)
    assert {k: v for k, v in _defaults(vision_model).items() if v is not None} == \
        {k: ({**v, "count": v.get("count")} if k == "outputs" else v) for k, v in vision._DEFAULTS.items() if v is not None}


def test_every_shipped_case_names_known_oracles_and_params():
    for path in sorted((ROOT / "cases").glob("*/*.yaml")):
        case = load_case(path, ROOT / "prompts", ROOT / "hardware")
        names = {"assets": list(case.spec.assets), "workspace": list(case.spec.workspace)}
        for step in case.spec.steps:
            assert _problem(step.oracle.name, step.oracle.params, names) is None, (path, step.name)
