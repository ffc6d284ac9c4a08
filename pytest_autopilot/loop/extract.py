"""Getting code (or JSON) out of an LLM answer. The code is never rewritten: what runs is
exactly the fenced block's text; the note records which block was taken and why."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([A-Za-z0-9_+.#-]*)[^\n]*\n(.*?)^[ \t]*\1[ \t]*$", re.M | re.S)
ALIASES = {
    "python": {"python", "py", "python3"},
    "cpp": {"cpp", "c++", "ino", "arduino", "cc"},
    "c": {"c", "h"},
    "json": {"json"},
}


class NoCode(Exception):
    """The answer holds no usable block; the message says what was expected."""


@dataclass
class Extracted:
    text: str
    language: str
    note: str


def blocks(answer: str) -> list[tuple[str, str]]:
    """All fenced blocks as (language tag lower-case, body)."""
    return [(m.group(2).lower(), m.group(3)) for m in FENCE.finditer(answer)]


def extract_code(answer: str, language: str, policy: str = "first") -> Extracted:
    names = ALIASES.get(language, {language})
    found = blocks(answer)
    tagged = [body for tag, body in found if tag in names]
    note = ""
    if not tagged:
        untagged = [body for tag, body in found if not tag]
        if len(untagged) == 1:
            tagged, note = untagged, "untagged fenced block used"
        else:
            raise NoCode(f"no ```{language} fenced block in the answer ({len(found)} other block(s)); "
                         f"answer with the complete program in one ```{language} block")
    if len(tagged) > 1:
        if policy == "reject":
            raise NoCode(f"{len(tagged)} ```{language} blocks in the answer; answer with exactly one")
        pick = {"first": 0, "last": -1}.get(policy)
        chosen = tagged[pick] if pick is not None else max(tagged, key=len)
        note = f"{len(tagged)} {language} blocks; policy {policy!r} took block {tagged.index(chosen) + 1}"
    else:
        chosen = tagged[0]
    if not chosen.strip():
        raise NoCode(f"the ```{language} block is empty")
    return Extracted(chosen, language, note)


def extract_json(answer: str) -> tuple[Any, str]:
    """The first ```json block that parses, else the whole answer as JSON."""
    errors = []
    for tag, body in blocks(answer):
        if tag in ("json", ""):
            try:
                return json.loads(body), f"```{tag or 'untagged'} block"
            except json.JSONDecodeError as exc:
                errors.append(f"line {exc.lineno}: {exc.msg}")
    try:
        return json.loads(answer), "whole answer"
    except json.JSONDecodeError:
        pass
    detail = f" (invalid JSON: {errors[0]})" if errors else ""
    raise NoCode(f"no parseable ```json block in the answer{detail}; answer with one ```json block")
