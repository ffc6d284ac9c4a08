"""Prompt templates: jinja2 with StrictUndefined, so a template naming a missing input fails
loudly instead of silently dropping it (the original lost inputs that way). Collection checks a
case's templates before any run: ``template_use`` reads what a template names (statically), and
``unsupplied`` which of those names a render with the case's context would miss."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pytest_autopilot.cases import defaults


class PromptError(Exception):
    """A template is missing or uses a variable the case does not provide."""


@dataclass
class TemplateUse:
    """What a template reads from its variables, counting what it includes, extends or imports."""

    variables: dict[str, str] = field(default_factory=dict)  # variable -> the template reading it
    steps: dict[str, str] = field(default_factory=dict)  # step name read as steps.<name> -> template


@lru_cache(maxsize=None)
def _environment(prompts_dir: str):
    import jinja2

    return _make_environment(prompts_dir, jinja2.StrictUndefined)


def _make_environment(prompts_dir: str, undefined):
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(defaults.prompt_dirs(Path(prompts_dir))),
        undefined=undefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render(prompts_dir: Path, template: str, variables: dict[str, Any]) -> str:
    import jinja2

    try:
        return _environment(str(prompts_dir)).get_template(template).render(**variables)
    except jinja2.UndefinedError as exc:
        raise PromptError(f"{prompts_dir / template}: {exc.message}; add it to the case's context or fix the template") from None
    except jinja2.TemplateError as exc:
        raise PromptError(f"{prompts_dir / template}: {exc}") from None


def template_use(prompts_dir: Path, template: str) -> TemplateUse:
    """The undeclared variables (and ``steps.<name>`` reads) of ``template`` and of the templates it
    pulls in, which see its variables. Raises PromptError for a syntax error or a missing template."""
    import jinja2
    from jinja2 import meta, nodes

    env = _environment(str(prompts_dir))
    use, assigned, seen, todo = TemplateUse(), set(), set(), [template]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            ast = env.parse(env.loader.get_source(env, name)[0], name)
        except jinja2.TemplateNotFound:
            raise PromptError(f"template {name!r}, used by {template}, is not found in {prompts_dir} or the packaged "
                              "prompts") from None
        except jinja2.TemplateSyntaxError as exc:
            raise PromptError(f"template {name} line {exc.lineno}: {exc.message}; fix its syntax") from None
        for var in sorted(meta.find_undeclared_variables(ast) - set(env.globals)):
            use.variables.setdefault(var, name)
        # names it sets (set, for, macro arguments) are visible to what it includes
        assigned |= {n.name for n in ast.find_all(nodes.Name) if n.ctx in ("store", "param")}
        for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
            key = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
            if isinstance(node.node, nodes.Name) and node.node.name == "steps" and isinstance(key, str):
                use.steps.setdefault(key, name)
        todo += [t for t in meta.find_referenced_templates(ast) if t is not None]
    use.variables = {var: where for var, where in use.variables.items() if where == template or var not in assigned}
    return use


def unsupplied(prompts_dir: Path, template: str, variables: dict[str, Any]) -> list[str]:
    """The variables rendering ``template`` with ``variables`` reads but does not get: what
    StrictUndefined would fail on, found by rendering with an Undefined that records instead, so a
    variable in a branch the case's context does not take is no error (``{% if accelerator ==
    "edgetpu" %}``), nor one the template guards (``is defined``, ``| default``)."""
    reached: list[str] = []
    try:
        _make_environment(str(prompts_dir), _recording_undefined(reached)).get_template(template).render(**variables)
    except Exception:  # noqa: BLE001 -- placeholders for the loop's run-time values may not fit every filter
        pass
    return sorted(set(reached))


def _recording_undefined(reached: list[str]):
    import jinja2
    from jinja2.utils import missing

    class Recording(jinja2.ChainableUndefined):
        def _note(self, value):
            if self._undefined_obj is missing:  # a top-level name, not an attribute of a given value
                reached.append(self._undefined_name)
            return value

        def __str__(self):
            return self._note("")

        def __iter__(self):
            return self._note(iter(()))

        def __bool__(self):
            return self._note(False)

        def __len__(self):
            return self._note(0)

        def __eq__(self, other):
            return self._note(False)

        def __ne__(self, other):
            return self._note(True)

        def __contains__(self, item):
            return self._note(False)

        __hash__ = jinja2.ChainableUndefined.__hash__

    return Recording


def prompt_hash(messages: list[dict[str, str]]) -> str:
    digest = hashlib.sha256()
    for message in messages:
        digest.update(message["role"].encode() + b"\0" + message["content"].encode() + b"\0")
    return digest.hexdigest()[:16]
