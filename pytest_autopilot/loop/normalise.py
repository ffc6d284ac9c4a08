"""Error text for repair prompts: volatile details replaced by stable placeholders (so a
replayed run sends byte-identical prompts) and bounded in length."""

from __future__ import annotations

import os
import re
import sys
import sysconfig
import tempfile
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
    text = strip_ansi(text).replace("\r\n", "\n")
    for pattern, placeholder in _RULES:
        text = pattern.sub(placeholder, text)
    return bound(text.strip(), limit)


def bound(text: str, limit: int) -> str:
    """Keep the head and the tail (where Python puts the exception) within ``limit`` chars."""
    if len(text) <= limit:
        return text
    marker = "\n[... {} characters omitted ...]\n"
    keep = max(limit - len(marker.format(len(text))), 0)
    head, tail = keep // 3, keep - keep // 3
    return text[:head] + marker.format(len(text) - head - tail) + text[len(text) - tail:]


NO_CODE_EXCERPT_CHARS = 1000  # an answer without code is quoted only this far in a repair prompt


def previous_answer(code: str | None, text: str, limit: int) -> str:
    """The previous answer as a repair prompt quotes it: its code within ``limit`` chars, or,
    when it had no code, a short excerpt of the answer; a marker says what was cut."""
    if code is not None:
        return bound(code, limit)
    return bound(text.strip(), min(limit, NO_CODE_EXCERPT_CHARS))
