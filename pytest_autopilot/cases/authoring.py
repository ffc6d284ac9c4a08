"""Help for writing a case file: ``pytest-autopilot oracles [NAME]`` prints each built-in oracle's
parameters (type, default, the one-line description of its pydantic model, an example), and
``pytest-autopilot schema [FILE]`` writes the case file's JSON Schema, oracle params included,
for editors (yaml-language-server: ``# yaml-language-server: $schema=case.schema.json``).

Everything comes from the models collection validates with (``cases.spec.CaseSpec``,
``oracles.BUILTIN_PARAMS``), so the help cannot drift from what is checked.
"""

from __future__ import annotations

import json
import sys
import textwrap
import types
import typing
from pathlib import Path
from typing import Any, Iterator

import yaml
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from pytest_autopilot.oracles import BUILTIN_PARAMS, params_model

CONTEXT_REF = {"type": "string", "pattern": r"\$\{context\.[A-Za-z0-9_.]+\}",
               "description": "a value of the case's context: ${context.key}"}


# ---- oracles


def type_name(tp: Any) -> str:
    """An annotation as a short readable type: ``list[str]``, ``int | None``, ``'exact' | 'affine'``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (list, dict):
        return f"{origin.__name__}[{', '.join(type_name(a) for a in args)}]"
    if tp is type(None):
        return "None"
    if tp is Any:
        return "any"
    return getattr(tp, "__name__", str(tp))


def _submodel(tp: Any) -> type[BaseModel] | None:
    """The params model inside an annotation (``X``, ``X | None``, ``list[X]``, ``dict[str, X]``)."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    for arg in typing.get_args(tp):
        found = _submodel(arg)
        if found is not None:
            return found
    return None


def _default(field) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        value = value.model_dump(exclude_defaults=True) or "{}"
    return f"default {json.dumps(value) if not isinstance(value, str) else value}"


def param_lines(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str, str, str]]:
    """(name, type, default, description) of each param, nested models' params after theirs."""
    for name, field in model.model_fields.items():
        yield prefix + name, type_name(field.annotation), _default(field), field.description or ""
        inner = _submodel(field.annotation)
        if inner is not None:
            yield from param_lines(inner, f"{prefix}{name}{_container_marker(field.annotation)}.")


def _container_marker(tp: Any) -> str:
    """How a nested model's params are named below a field: ``files[].path``, ``columns.<key>.type``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):  # X | None
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    return {list: "[]", dict: ".<key>"}.get(typing.get_origin(tp), "")


def describe_oracle(name: str) -> str:
    model = params_model(BUILTIN_PARAMS[name])
    summary = " ".join((model.__doc__ or "").strip().split("\n\n")[0].split())  # the first paragraph, whole
    rows = list(param_lines(model))
    width = max(len(r[0]) for r in rows)
    lines = [f"{name}: {summary}", "  params:"]
    for param, kind, default, text in rows:
        lines.append(f"    {param:<{width}}  {kind} ({default})" + (f"  {text}" if text else ""))
    if model.checks:
        lines.append("  checks (what caught_by may name; <x> stands for a path or a kind):")
        lines += textwrap.wrap(", ".join(model.checks), 100, initial_indent="    ", subsequent_indent="    ",
                               break_on_hyphens=False)
    examples = (model.model_config.get("json_schema_extra") or {}).get("examples") or []
    if examples:
        snippet = yaml.safe_dump({"oracle": {"name": name, "params": examples[0]}}, sort_keys=False,
                                 default_flow_style=None, width=100)
        lines += ["  example (under a step):", *("    " + line for line in snippet.splitlines())]
    return "\n".join(lines)


def cmd_oracles(args) -> int:
    from pytest_autopilot.core.util import did_you_mean

    names = sorted(BUILTIN_PARAMS)
    if args.name and args.name not in BUILTIN_PARAMS:
        guess = did_you_mean(args.name, names)
        print(f"pytest-autopilot oracles: no built-in oracle {args.name!r}" + (f"; did you mean {guess!r}?" if guess
              else f"; known: {', '.join(names)}"), file=sys.stderr)
        return 2
    print("\n\n".join(describe_oracle(n) for n in ([args.name] if args.name else names)))
    if not args.name:
        print("\n(oracles a conftest registers are checked by their own params model; see ARCHITECTURE.md)")
    return 0


# ---- JSON Schema


def case_schema() -> dict[str, Any]:
    """The case file's JSON Schema: CaseSpec, with each built-in oracle's params model applied to
    the step's params when its ``name`` is that oracle (any other name: params unchecked), and
    ``${context.key}`` accepted for any param value."""
    from pytest_autopilot.cases.spec import CaseSpec

    schema = CaseSpec.model_json_schema()
    defs = schema.setdefault("$defs", {})
    rules = []
    for name, declared in sorted(BUILTIN_PARAMS.items()):
        model = params_model(declared)
        own = model.model_json_schema()
        for def_name, definition in {**own.pop("$defs", {}), model.__name__: own}.items():
            _allow_context_refs(definition)
            if defs.get(def_name, definition) != definition:
                raise ValueError(f"two schemas named {def_name}")  # a harness bug: rename one model
            defs[def_name] = definition
        rules.append({"if": {"properties": {"name": {"const": name}}, "required": ["name"]},
                      "then": {"properties": {"params": {"$ref": f"#/$defs/{model.__name__}"}}}})
    defs["ContextRef"] = CONTEXT_REF
    defs["OracleSpec"]["allOf"] = rules
    defs["OracleSpec"]["properties"]["name"]["examples"] = sorted(BUILTIN_PARAMS)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema, "title": "pytest-autopilot case file"}


def _allow_context_refs(node: dict[str, Any]) -> None:
    """Let every property, item and mapping value below ``node`` also be a ``${context.key}``."""
    for prop, sub in (node.get("properties") or {}).items():
        _allow_context_refs(sub)
        node["properties"][prop] = _or_ref(sub)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            _allow_context_refs(node[key])
            node[key] = _or_ref(node[key])
    for variant in node.get("anyOf", []):
        _allow_context_refs(variant)


def _or_ref(sub: dict[str, Any]) -> dict[str, Any]:
    extra = {k: sub[k] for k in ("description", "default", "title") if k in sub}
    return {"anyOf": [sub, {"$ref": "#/$defs/ContextRef"}], **extra}


def cmd_schema(args) -> int:
    text = json.dumps(case_schema(), indent=2) + "\n"
    if args.out in (None, "-"):
        sys.stdout.write(text)
        return 0
    Path(args.out).write_text(text)
    print(f"wrote {args.out}; in a case file: # yaml-language-server: $schema={args.out}")
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("oracles", help="print each built-in oracle's params: type, default, description, example",
                       description="print the parameters of every built-in oracle (or of NAME): type, default, "
                                   "a one-line description, and an example of its params in a case file")
    p.add_argument("name", nargs="?", metavar="NAME", help="one oracle")
    p.set_defaults(func=cmd_oracles)
    p = sub.add_parser("schema", help="write the JSON Schema of a case file (for editors)",
                       description="write the JSON Schema of a case file, oracle params included, e.g. for "
                                   "yaml-language-server; without FILE it goes to standard output")
    p.add_argument("out", nargs="?", metavar="FILE", help="where to write it (default: standard output)")
    p.set_defaults(func=cmd_schema)
