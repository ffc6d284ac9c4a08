"""Getting code (or JSON) out of an LLM answer. The code is never rewritten: what runs is
exactly the fenced block's content as CommonMark defines it -- the block's lines, less the
opening fence's indentation (a fence indented N columns, e.g. inside a list item, loses up to
N leading spaces from each line; deeper indentation is the code's own and stays). One exception:
an untagged block whose first line is only a language word (```` ```\npython\n... ````) has that
word taken as its info string, as the model meant it (the word is never valid code). The note
records which block was taken and why, when indentation was removed and when a word became the tag."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

FENCE = re.compile(r"^([ \t]*)(`{3,}|~{3,})[ \t]*([A-Za-z0-9_+.#-]*)[^\n]*\n(.*?)^[ \t]*\2[ \t]*$", re.M | re.S)
TAB_STOP = 4  # CommonMark: tabs advance to the next multiple of 4 columns
ALIASES = {
    "python": {"python", "py", "python3"},
    "cpp": {"cpp", "c++", "ino", "arduino", "cc"},
    "c": {"c", "h"},
    "json": {"json"},
}


# An untagged block whose first line is only one of these words: the model meant it as the info
# string (```\npython\n...). As code it is never valid (a NameError in Python, an error in C).
LANGUAGE_WORDS = frozenset().union(*ALIASES.values())


class NoCode(Exception):
    """The answer holds no usable block; the message says what was expected."""


@dataclass
class Extracted:
    text: str
    language: str
    note: str


@dataclass(frozen=True)
class _Block:
    tag: str  # language tag, lower-case
    body: str  # content, the fence's indentation removed
    indent: int  # columns the opening fence was indented (0: the content is the text as written)
    word_tag: bool = False  # the tag came from a lone language word on the block's first line


def _unindent(line: str, width: int) -> str:
    """``line`` without up to ``width`` columns of leading spaces/tabs (a tab that would cross
    ``width`` stays)."""
    column = i = 0
    while i < len(line) and line[i] in " \t":
        step = TAB_STOP - column % TAB_STOP if line[i] == "\t" else 1
        if column + step > width:
            break
        column, i = column + step, i + 1
    return line[i:]


def _fenced(answer: str) -> list[_Block]:
    out = []
    for m in FENCE.finditer(answer):
        indent = len(m.group(1).expandtabs(TAB_STOP))  # columns
        body = m.group(4)
        if indent:
            body = "\n".join(_unindent(line, indent) for line in body.split("\n"))
        tag, word_tag = m.group(3).lower(), False
        first, newline, rest = body.partition("\n")
        if not tag and newline and first.strip().lower() in LANGUAGE_WORDS:
            tag, body, word_tag = first.strip().lower(), rest, True
        out.append(_Block(tag, body, indent, word_tag))
    return out


def blocks(answer: str) -> list[tuple[str, str]]:
    """All fenced blocks as (language tag lower-case, content), see the module docstring."""
    return [(b.tag, b.body) for b in _fenced(answer)]


def extract_code(answer: str, language: str, policy: str = "first") -> Extracted:
    names = ALIASES.get(language, {language})
    found = _fenced(answer)
    tagged = [b for b in found if b.tag in names]
    note = ""
    if not tagged:
        untagged = [b for b in found if not b.tag]
        if len(untagged) == 1:
            tagged, note = untagged, "untagged fenced block used"
        else:
            raise NoCode(f"no ```{language} fenced block in the answer ({len(found)} other block(s)); "
                         f"answer with the complete program in one ```{language} block")
    if len(tagged) > 1:
        if policy == "reject":
            raise NoCode(f"{len(tagged)} ```{language} blocks in the answer; answer with exactly one")
        pick = {"first": 0, "last": -1}.get(policy)
        chosen = tagged[pick] if pick is not None else max(tagged, key=lambda b: len(b.body))
        note = f"{len(tagged)} {language} blocks; policy {policy!r} took block {tagged.index(chosen) + 1}"
    else:
        chosen = tagged[0]
    if not chosen.body.strip():
        raise NoCode(f"the ```{language} block is empty")
    if chosen.word_tag:
        word = f"the untagged block's first line {chosen.tag!r} was taken as its language tag"
        note = f"{note}; {word}" if note else word
    if chosen.indent:
        dedent = (f"fence indented {chosen.indent} column(s): up to {chosen.indent} leading spaces removed "
                  "from each line (CommonMark)")
        note = f"{note}; {dedent}" if note else dedent
    return Extracted(chosen.body, language, note)


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
