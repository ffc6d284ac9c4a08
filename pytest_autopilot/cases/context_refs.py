"""``${context.key}`` in oracle params: a value the prompt and the oracle share, written once in
the case's ``context``.

A reference that is the whole value keeps the context value's type (``operations:
${context.n_operations}`` is the number 8, ``channels: ${context.channels}`` the list); one
inside a longer string is replaced by the value's text (strings and numbers only). Dotted
paths reach into mappings and lists (``${context.name_rules.split}``, ``${context.rows.0}``).
``$${`` is a literal ``${``. Anything else between ``${`` and ``}`` is an error, so a typo
never passes through as text.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from pytest_autopilot.core.util import did_you_mean

_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_WHOLE = re.compile(r"^\$\{([^}]*)\}$")


class UnresolvedReference(ValueError):
    """A reference that names nothing: ``where`` is the param's path below ``params``."""

    def __init__(self, where: str, message: str):
        super().__init__(message)
        self.where = where


def resolve(value: Any, context: dict[str, Any], where: str = "") -> Any:
    """``value`` (a params mapping, list or scalar) with every reference replaced."""
    if isinstance(value, dict):
        return {key: resolve(item, context, f"{where}.{key}" if where else str(key)) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, context, f"{where}.{i}") for i, item in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value
    whole = _WHOLE.match(value)
    if whole:
        return copy.deepcopy(_lookup(whole.group(1), context, where))
    return _TOKEN.sub(lambda m: _text(m, context, where), value)


def _text(match: re.Match, context: dict[str, Any], where: str) -> str:
    if match.group(0) == "$${":
        return "${"
    if match.group(1) is None:
        raise UnresolvedReference(where, "'${' without a closing '}'; write ${context.<key>}, or $${ for a literal ${")
    found = _lookup(match.group(1), context, where)
    if isinstance(found, bool) or not isinstance(found, (str, int, float)):
        raise UnresolvedReference(where, f"${{{match.group(1)}}} is a {type(found).__name__}, which cannot be part of a "
                                    "text; make the reference the whole value to keep its type")
    return str(found)


def _lookup(path: str, context: dict[str, Any], where: str) -> Any:
    head, _, rest = path.strip().partition(".")
    if head != "context" or not rest:
        raise UnresolvedReference(where, f"${{{path}}} is not a reference to the case's context; write "
                                    "${context.<key>}, or $${ for a literal ${")
    found: Any = context
    walked = "context"
    for part in rest.split("."):
        if isinstance(found, dict) and part in found:
            found = found[part]
        elif isinstance(found, list) and part.isdigit() and int(part) < len(found):
            found = found[int(part)]
        else:
            raise UnresolvedReference(where, f"${{{path}}} names nothing in the case's context: {_missing(walked, found, part)}")
        walked += f".{part}"
    return found


def _missing(walked: str, found: Any, part: str) -> str:
    if isinstance(found, dict):
        guess = did_you_mean(part, [str(k) for k in found])
        known = ", ".join(str(k) for k in found) or "none"
        return f"{walked} has no key {part!r}" + (f"; did you mean {guess!r}?" if guess else f" (keys: {known})")
    if isinstance(found, list):
        return f"{walked} is a list of {len(found)}; {part!r} is not an index of it"
    return f"{walked} is a {type(found).__name__}, it has no {part!r}"
