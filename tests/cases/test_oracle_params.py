"""The oracle names and params a case may give, checked at collection from the declarations in
``oracles.BUILTIN_PARAMS`` (no oracle module imported), and those declarations kept true to what
each built-in oracle reads."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_autopilot import oracles
from pytest_autopilot.cases.spec import load_case
from pytest_autopilot.oracles import BUILTIN_MODULES, BUILTIN_PARAMS, OracleRegistry

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize("name, params, expected", [
    ("dp_clean_split", {"label": "Fruit"}, None),
    ("dp_clen_split", {}, ("name", "unknown oracle 'dp_clen_split'; known: ardsg_app_spec, ardsg_firmware")),
    ("dp_clean_split", {"lable": "Fruit"},
     ("params.lable", "not a param of oracle dp_clean_split; remove it or check its spelling (known: channels")),
    ("mc_tflite", {"model": "m.tflite", "heldout": "h", "input_dtype": "int8"},
     ("params.output_dtype", "required by oracle mc_tflite; add it")),
])
def test_the_registry_names_the_field_and_the_fix(name, params, expected):
    problem = OracleRegistry().problem(name, params)
    if expected is None:
        assert problem is None
    else:
        assert problem[0] == expected[0] and problem[1].startswith(expected[1]), problem


def test_a_conftest_oracle_is_checked_only_when_it_declares_its_params():
    registry = OracleRegistry()
    registry.register("free", lambda ctx: None)
    registry.register("strict", lambda ctx: None, params=["expected"])
    assert registry.problem("free", {"anything": 1}) is None
    assert registry.problem("strict", {"expected": 1}) is None
    assert registry.problem("strict", {"expcted": 1})[0] == "params.expcted"
    assert "free" in registry.names() and "dp_plan" in registry.names()


def test_checking_names_and_params_imports_no_oracle_module():
    code = ("import sys\nfrom pytest_autopilot.oracles import OracleRegistry\n"
            "r = OracleRegistry(); r.names(); r.problem('dp_operation', {'label': 'x'})\n"
            "print(sorted(m for m in sys.modules if m.startswith('pytest_autopilot.oracles.') or m == 'pandas'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _registered(module: str) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(Path(importlib.import_module(module).__file__).read_text())
    return {d.args[0].value: node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
            for d in node.decorator_list if isinstance(d, ast.Call) and getattr(d.func, "id", "") == "register"}


def _params_read(module: str) -> set[str]:
    """Keys read from a params mapping (``p``, ``params``, ``ctx.params``) anywhere in the module."""
    def is_params(node) -> bool:
        return (isinstance(node, ast.Name) and node.id in ("p", "params")) or (
            isinstance(node, ast.Attribute) and node.attr == "params")

    keys = set()
    for node in ast.walk(ast.parse(Path(importlib.import_module(module).__file__).read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                and is_params(node.func.value) and node.args and isinstance(node.args[0], ast.Constant):
            keys.add(node.args[0].value)
        elif isinstance(node, ast.Subscript) and is_params(node.value) and isinstance(node.slice, ast.Constant):
            keys.add(node.slice.value)
        elif isinstance(node, ast.Compare) and isinstance(node.left, ast.Constant) and is_params(node.comparators[0]):
            keys.add(node.left.value)
    return keys


def test_every_builtin_oracle_is_declared_and_every_declaration_registered():
    registered = {name: module for module in BUILTIN_MODULES for name in _registered(module)}
    assert sorted(registered) == sorted(BUILTIN_PARAMS)


@pytest.mark.parametrize("module", [m for m in BUILTIN_MODULES if not m.endswith(("mc", "vision", "dp_clean_split"))])
def test_declared_params_are_the_ones_the_module_reads(module):
    declared = set().union(*(BUILTIN_PARAMS[name].known for name in _registered(module)))
    assert _params_read(module) == declared


def test_declared_params_match_the_modules_own_defaults():
    from pytest_autopilot.oracles import dp_split, mc, vision

    assert BUILTIN_PARAMS["dp_clean_split"].known == set(dp_split._CLEAN_DEFAULTS)
    mc_required = {"model", "heldout", "input_dtype", "output_dtype"}
    assert BUILTIN_PARAMS["mc_tflite"] == oracles.Params(frozenset(set(mc._DEFAULTS) | mc_required),
                                                         frozenset(mc_required))
    assert BUILTIN_PARAMS["vision_detection"] == oracles.Params(frozenset(set(vision._DEFAULTS) | set(vision._REQUIRED)),
                                                                frozenset(vision._REQUIRED))


def test_every_shipped_case_names_known_oracles_and_params():
    registry = OracleRegistry()
    for path in sorted((ROOT / "cases").glob("*/*.yaml")):
        case = load_case(path, ROOT / "prompts", ROOT / "hardware")
        for step in case.spec.steps:
            assert registry.problem(step.oracle.name, step.oracle.params) is None, (path, step.name)
