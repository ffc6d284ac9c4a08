"""Small helpers every layer shares, defined once: atomic writes, laying out input files, the
cache folder and its locks, ANSI stripping, number formatting, one-line validation errors and
their "did you mean"."""

from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import signal
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
LOCK_TIMEOUT_S = 900.0  # a cache build (an Arduino core, a reference detection) may take minutes
# Anything shaped like a credential: redacted from messages, and what tests scan the cassettes folder for.
SECRET_PATTERN = re.compile(
    r"(sk-[A-Za-z0-9_-]{20,}|Bearer\s+[A-Za-z0-9._~+/-]{16,}|AKIA[0-9A-Z]{16}|"
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----|gh[pousr]_[A-Za-z0-9]{30,}|xox[abp]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{30,})"
)


def strip_ansi(text: str) -> str:
    return ANSI.sub("", text)


def slug(text: str) -> str:
    """Readable, filesystem-safe id part: ``ollama/qwen2.5-coder:14b`` -> ``ollama-qwen2.5-coder-14b``."""
    return re.sub(r"-{2,}", "-", re.sub(r"[^A-Za-z0-9._]+", "-", text)).strip("-.") or "x"


def relative_to(root: Path, path: Path) -> str:
    """``path`` relative to ``root`` when inside it (reports never hold the checkout's location)."""
    try:
        return str(Path(path).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return str(path)


def atomic_write(path: Path, data: str | bytes) -> Path:
    """Write via a temp file in the same directory, fsync, then ``os.replace``: readers see the
    old file or the new one, never half of it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def lay_out(workdir: Path, files: Mapping[str, Path | bytes]) -> None:
    """Copy inputs into a work dir at their relative paths. Folders are copied whole, later
    entries override earlier ones, and no path may leave the work dir."""
    root = Path(workdir).resolve()
    for rel, source in files.items():
        dest = (root / rel).resolve()
        if not dest.is_relative_to(root) or dest == root:
            raise ValueError(f"input path {rel!r} leaves the work dir")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, bytes):
            dest.write_bytes(source)
        elif Path(source).is_dir():
            shutil.copytree(source, dest, dirs_exist_ok=True)
        else:
            shutil.copyfile(source, dest)


def cache_dir(kind: str, env: str | None = None) -> Path:
    """The user cache folder for ``kind``: ``$env`` if given and set, else
    ``$AUTOPILOT_CACHE_DIR/<kind>``, else ``$XDG_CACHE_HOME`` (or ``~/.cache``)``/pytest-autopilot/<kind>``."""
    if env and os.environ.get(env):
        return Path(os.environ[env])
    base = os.environ.get("AUTOPILOT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pytest-autopilot")
    return Path(base) / kind


@contextmanager
def file_lock(path: Path, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """A machine-wide lock (filelock) shared by xdist workers; a timeout is a harness error."""
    from filelock import FileLock, Timeout

    from pytest_autopilot.core.errors import HarnessError
    from pytest_autopilot.core.records import Category

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(path), timeout=timeout_s):
            yield
    except Timeout:
        raise HarnessError(Category.HARNESS_ERROR, f"lock {path} still held after {timeout_s:.0f} s; "
                           "is another run stuck? remove the file if no run is active") from None


def finite(value: Any) -> float | None:
    """``value`` as a finite float, or None (missing, NaN, infinite, not a number)."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def fmt_num(value: Any, spec: str = ".2f", missing: str = "-", suffix: str = "", prefix: str = "") -> str:
    """One number formatter for reports: ``missing`` when there is no finite value, else
    ``prefix`` + the value in format ``spec`` + ``suffix`` (``fmt_num(0.5, ".4f", "unknown", prefix="$")``)."""
    v = finite(value)
    return missing if v is None else f"{prefix}{v:{spec}}{suffix}"


def clip(text: Any, limit: int, one_line: bool = True) -> str:
    """``text`` within ``limit`` characters, its end cut to "…"; ``one_line`` joins its whitespace first."""
    text = " ".join(str(text or "").split()) if one_line else str(text or "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def listed(items: Iterable[Any], limit: int = 5, sep: str = ", ") -> str:
    """The first ``limit`` items joined by ``sep``, with the total when there are more."""
    items = list(items)
    text = sep.join(str(i) for i in items[:limit])
    return text + (f"{sep}... ({len(items)} in all)" if len(items) > limit else "")


def did_you_mean(word: Any, options: Iterable[str]) -> str | None:
    """The option closest to a misspelt ``word`` (difflib, ignoring case and ``-``/``_``), else the one
    option that starts with it (``tol`` -> ``tolerance``), or None when none is close."""
    import difflib

    options = sorted(options)
    spelled = {str(o).lower().replace("-", "_"): o for o in options}
    typed = str(word).lower().replace("-", "_")
    close = difflib.get_close_matches(typed, sorted(spelled), n=1, cutoff=0.75)
    if close:
        return spelled[close[0]]
    starting = [o for key, o in spelled.items() if len(typed) >= 3 and key.startswith(typed)]
    return starting[0] if len(starting) == 1 else None


def model_keys(model: Any, loc: tuple[Any, ...]) -> list[str] | None:
    """The field names of the pydantic model found at ``loc`` below ``model`` (dict values, list
    items and optional models followed), or None when ``loc`` leads to no model."""
    import typing

    from pydantic import BaseModel

    def unwrap(tp: Any) -> Any:
        while typing.get_origin(tp) is typing.Annotated:
            tp = typing.get_args(tp)[0]
        members = [a for a in typing.get_args(tp) if a is not type(None)] if _is_union(tp) else []
        return next((m for m in members if isinstance(m, type) and issubclass(m, BaseModel)),
                    members[0] if len(members) == 1 else tp)

    tp = model
    for part in loc:
        tp = unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return None
            tp = field.annotation
        elif typing.get_origin(tp) in (dict, list):
            tp = typing.get_args(tp)[-1] if typing.get_args(tp) else Any
        else:
            return None
    tp = unwrap(tp)
    return list(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _is_union(tp: Any) -> bool:
    import types
    import typing

    return typing.get_origin(tp) in (typing.Union, types.UnionType)


@dataclass(frozen=True)
class FieldError:
    """One error of a pydantic ValidationError as shown: where, what kind, the fix."""

    loc: tuple[Any, ...]
    kind: str
    hint: str


@dataclass(frozen=True)
class FirstError(FieldError):
    """The error to show first, and how many others there are."""

    others: int


def field_errors(exc, model: Any = None) -> list[FieldError]:
    """Every error, unknown fields first (a misspelt key otherwise shows as a missing one); with
    ``model``, an unknown field gets a "did you mean" and the missing field it misspells is left out."""
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    misspelt: set[tuple[Any, ...]] = set()  # the "field required" twins of misspelt keys: the same mistake
    out = []
    for err in errors:
        loc, kind = tuple(err["loc"]), err["type"]
        if kind == "extra_forbidden":
            known = model_keys(model, loc[:-1]) if model is not None else None
            guess = did_you_mean(loc[-1], known or [])
            hint = (f"unknown field; did you mean {guess!r}?" if guess else "unknown field; remove it or check its spelling"
                    + (f" (known: {', '.join(known)})" if known else ""))
            if guess:
                misspelt.add((*loc[:-1], guess))
        elif kind == "missing":
            if loc in misspelt:
                continue
            hint = "Field required"
        else:
            hint = err["msg"].removeprefix("Value error, ")
            if kind != "value_error" and "input" in err:
                shown = repr(err["input"])
                hint += f", got {shown if len(shown) <= 60 else shown[:57] + '...'}"
        out.append(FieldError(loc, kind, hint))
    return out


def first_error(exc, model: Any = None) -> FirstError:
    """The error to show when there is room for one (see ``field_errors``)."""
    errors = field_errors(exc, model)
    return FirstError(errors[0].loc, errors[0].kind, errors[0].hint, len(errors) - 1)


def validation_lines(exc, where: str, raw: Any = None, field_name=None, model: Any = None) -> list[str]:
    """One line per error of a pydantic ValidationError: the file, the field, the fix (see
    ``field_errors``). ``field_name(loc, raw)`` may render the location (e.g. steps by name)."""
    def shown(loc):
        return field_name(loc, raw) if field_name else ".".join(str(p) for p in loc) or "(top level)"

    return [f"{where}: field {shown(e.loc)}: {e.hint}" for e in field_errors(exc, model)]


def validation_line(exc, where: str, raw: Any = None, field_name=None, model: Any = None) -> str:
    """The first of ``validation_lines``, with how many more there are."""
    lines = validation_lines(exc, where, raw, field_name, model)
    return lines[0] + (f" (+{len(lines) - 1} more)" if len(lines) > 1 else "")


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in chunks (models and videos may be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """In a child, before exec (``preexec_fn``): receive ``sig`` when the parent dies (Linux
    ``PR_SET_PDEATHSIG``), so a helper server never outlives the session that started it."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, sig)
    except (OSError, AttributeError):
        pass


def redact(text: str, limit: int = 300) -> str:
    """Text (an exception's) without anything that looks like key material, cut to ``limit``."""
    return SECRET_PATTERN.sub("<redacted>", text)[:limit]
