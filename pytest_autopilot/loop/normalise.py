"""Error text for repair prompts: volatile details replaced by stable placeholders (so a
replayed run sends byte-identical prompts) and bounded in length."""

from __future__ import annotations

import os
import re
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pytest_autopilot.core.util import strip_ansi


def _installation_rules() -> list[tuple[re.Pattern[str], str]]:
    """Where Python, its packages and this checkout live differs between machines (a CI clone,
    a venv): those prefixes become placeholders so replayed prompts match."""
    paths = sysconfig.get_paths()
    prefixes = {
        # the checkout holding pytest_autopilot/loop/ (first: an installed copy's parent stays <SITE>)
        str(Path(__file__).resolve().parents[2]): "<REPO>",
        paths["purelib"]: "<SITE>", paths["platlib"]: "<SITE>", paths["stdlib"]: "<STDLIB>",
        paths["platstdlib"]: "<STDLIB>", sys.prefix: "<PYTHON>", sys.base_prefix: "<PYTHON>",
    }
    # a sandboxed program sees real paths (the view binds them): their symlink-free forms too
    prefixes.update({os.path.realpath(p): name for p, name in list(prefixes.items()) if p})
    ordered = sorted((p.rstrip("/"), name) for p, name in prefixes.items() if p and len(p) > 1)
    ordered.sort(key=lambda item: -len(item[0]))  # longest first: site-packages before the venv
    return [(re.compile(re.escape(p) + r"(?=/|\b)"), name) for p, name in ordered]


_RULES: list[tuple[re.Pattern[str], str]] = _installation_rules() + [
    # absl/glog line prefix (TensorFlow): severity, date, time, thread id
    (re.compile(r"(?m)^([IWEF])\d{4} \d{2}:\d{2}:[0-9.]+\s+\d+ "), r"\1<LOGPREFIX> "),
    (re.compile(r"\b\d+(?:\.\d+)?\s?(?:microseconds|milliseconds|nanoseconds|µs)\b"), "<DURATION>"),
    # sandbox and system temp dirs, whatever the OS calls them
    (re.compile(re.escape(tempfile.gettempdir().rstrip("/")) + r"/[^\s'\":,)]*"), "<TMP>"),
    (re.compile(r"/(?:tmp|var/tmp|var/folders|private/var)/[^\s'\":,)]*"), "<TMP>"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?"), "<TIMESTAMP>"),
    (re.compile(r"\b\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\b"), "<TIME>"),
    (re.compile(r"\b1[0-9]{9}(?:\.[0-9]+)?\b"), "<EPOCH>"),  # Unix time in seconds (2001-2033)
    (re.compile(r"\b0x[0-9a-fA-F]{6,16}\b"), "<ADDR>"),
    # an object's id() printed in decimal (a heap address, ~1.4e14), e.g. a saved TF model's "Captures:"
    (re.compile(r"\b\d{14,16}\b"), "<ID>"),
    (re.compile(r"\b(pid|PID|process|Process)([ =:]+)\d+"), r"\1\2<PID>"),
    (re.compile(r"\b\d+(?:\.\d+)?\s?(?:ms|s|sec|seconds)\b(?= elapsed| taken|\))"), "<DURATION>"),
]


def normalise_error(text: str, limit: int) -> str:
    """The text with volatile details replaced, bounded (head and tail) within ``limit`` chars."""
    return bound(_normalised(text), limit)


def _normalised(text: str) -> str:
    text = strip_ansi(text).replace("\r\n", "\n")
    for pattern, placeholder in _RULES:
        text = pattern.sub(placeholder, text)
    return text.strip()


OMITTED = "[... {} characters omitted ...]"
FIRST_ERROR = re.compile(r"(?im)^.*\berror\b")  # a compiler's first error line (gcc, clang, ld, arduino-cli)


@dataclass(frozen=True)
class Excerpt:
    """A text cut to a bound: ``head``, then ``omitted`` characters left out, then ``tail``."""

    head: str
    omitted: int = 0
    tail: str = ""
    skipped: int = 0  # characters left out before ``head`` (warnings before a build's first error)


def excerpt(text: str, limit: int, keep: str = "ends") -> Excerpt:
    """``text`` within ``limit`` chars: the head and the tail (where Python puts the exception),
    or with ``keep="head"`` the first errors (a compiler's first errors are the ones that matter;
    the later ones often follow from them): from the start, or from the first error line when
    warnings before it would take most of the room."""
    if len(text) <= limit:
        return Excerpt(text)
    room = max(limit - len(OMITTED.format(len(text))) - 2, 0)  # the marker stands on its own line
    if keep == "head":
        first = FIRST_ERROR.search(text)
        skip = text.rfind("\n", 0, first.start()) + 1 if first and first.start() > room // 2 else 0
        head = _whole_lines(text[skip:skip + room])
        return Excerpt(head, len(text) - skip - len(head), skipped=skip)
    head, tail = text[:room // 3], text[len(text) - (room - room // 3):]
    return Excerpt(head, len(text) - len(head) - len(tail), tail)


def _whole_lines(head: str) -> str:
    """``head`` without a last, partial line (when it has a complete one)."""
    cut = head.rfind("\n")
    return head[:cut] if cut > 0 else head


def bound(text: str, limit: int) -> str:
    """Head and tail within ``limit`` chars, the cut marked inline (for logs and single-line fields)."""
    part = excerpt(text, limit)
    if not part.omitted:
        return text
    return f"{part.head}\n{OMITTED.format(part.omitted)}\n{part.tail}"


def _fence_for(text: str) -> str:
    """A backtick fence longer than any backtick run inside ``text`` (CommonMark), at least three."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _fenced(text: str, tag: str = "") -> str:
    fence = _fence_for(text)
    return f"{fence}{tag}\n{text}\n{fence}"


def _quoted(text: str) -> str:
    """Quoted line by line (a Markdown block quote): shown as what was said, not as code to run."""
    return "\n".join(f"> {line}" if line else ">" for line in text.split("\n"))


def error_section(feedback: str, limit: int, keep: str = "ends") -> str:
    """The error feedback of a repair prompt: normalised, bounded, fenced as program output; what
    was left out is marked outside the fences, so no marker ever sits inside quoted output."""
    part = excerpt(_normalised(feedback), limit, keep)
    if not part.omitted:
        return _fenced(part.head)
    marker = OMITTED.format(part.omitted)
    if not part.tail:
        before = f"{OMITTED.format(part.skipped)} (before the first error)\n" if part.skipped else ""
        return f"{before}{_fenced(part.head)}\n{marker} (the rest of the output)"
    return f"{_fenced(part.head)}\n{marker}\n{_fenced(part.tail)}"


NO_CODE_EXCERPT_CHARS = 1000  # an answer without code is quoted only this far in a repair prompt


def previous_answer(code: str | None, text: str, limit: int, language: str) -> str:
    """The previous answer as a repair prompt shows it: its complete code in a fence; code over
    ``limit`` chars, or an answer without code, only as a quoted excerpt (never as code), with
    what was left out marked outside the quote."""
    if code is not None and len(code) <= limit:
        return _fenced(code, language)
    if code is not None:
        return _quoted_excerpt(f"Your {language} code ({len(code)} characters) is too long to repeat in full; its "
                               "beginning and end, quoted (an excerpt, not code to copy):", code, limit)
    return _quoted_excerpt(f"It had no complete ```{language} block. Your answer, quoted (not code to copy):",
                           text.strip(), min(limit, NO_CODE_EXCERPT_CHARS))


def own_turn(text: str, limit: int) -> str:
    """The model's answer as its own turn in a conversation: as it was, or over ``limit`` chars a
    quoted excerpt (a cut never sits inside its code block)."""
    if len(text) <= limit:
        return text
    return _quoted_excerpt(f"(My answer of {len(text)} characters, shortened: its beginning and end, quoted.)",
                           text, limit)


def _quoted_excerpt(intro: str, text: str, limit: int) -> str:
    """``intro``, then ``text`` quoted within ``limit`` chars in all; the cut marked between the quotes."""
    budget = limit - len(intro)
    while True:
        part = excerpt(text, max(budget, 0))
        section = f"{intro}\n{_quoted(part.head)}"
        if part.omitted:
            section += f"\n\n{OMITTED.format(part.omitted)}\n\n{_quoted(part.tail)}"
        if len(section) <= limit or budget <= 0:
            return section
        budget -= len(section) - limit  # the quote marks took room: cut more
