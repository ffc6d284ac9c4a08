"""Toolchains run extracted code. Each declares what it needs so a missing optional
dependency fails (or skips) only the cases that need it, with the exact install hint."""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .records import ExecResult

SCRIPT_NAME = "main.py"


class ToolchainMissing(Exception):
    """A case needs something this machine lacks; the message holds the install command."""


@dataclass(frozen=True)
class Requirement:
    check: Callable[[], bool]
    hint: str


def _module(name: str) -> Callable[[], bool]:
    return lambda: importlib.util.find_spec(name) is not None


def _program(name: str) -> Callable[[], bool]:
    return lambda: shutil.which(name) is not None


# Toolchain names a case may list under requires.toolchains.
MC_EXTRA = 'pip install "pytest-autopilot[mc]"  (tensorflow-cpu, ai-edge-litert, tflite-micro)'
REQUIREMENTS: dict[str, Requirement] = {
    "python": Requirement(lambda: True, ""),
    "pandas": Requirement(_module("pandas"), "pip install pandas"),
    "numpy": Requirement(_module("numpy"), "pip install numpy"),
    "tensorflow": Requirement(_module("tensorflow"), "pip install tensorflow-cpu  # or: " + MC_EXTRA),
    "litert": Requirement(_module("ai_edge_litert"), "pip install ai-edge-litert  # or: " + MC_EXTRA),
    "tflite_micro": Requirement(_module("tflite_micro"), "pip install tflite-micro  # or: " + MC_EXTRA),
}


def check_requirements(names: list[str]) -> None:
    from .arduino import REQUIREMENTS as firmware  # imports this module: merged lazily

    known = {**firmware, **REQUIREMENTS}
    for name in names:
        req = known.get(name)
        if req is None:
            raise ToolchainMissing(f"unknown toolchain {name!r} in requires.toolchains (known: {', '.join(sorted(known))})")
        if not req.check():
            raise ToolchainMissing(f"toolchain {name!r} is not installed; install it with: {req.hint}")


def lay_out(workdir: Path, files: dict[str, Path | bytes]) -> None:
    """Copy inputs into the sandbox work dir at their relative paths."""
    for rel, source in files.items():
        dest = workdir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, bytes):
            dest.write_bytes(source)
        else:
            shutil.copyfile(source, dest)


class PythonToolchain:
    """Runs a Python program in a fresh sandbox work dir."""

    name = "python"

    def __init__(self, sandbox):
        self.sandbox = sandbox

    def execute(self, code: str, workdir: Path, files: dict[str, Path | bytes], limits) -> ExecResult:
        lay_out(workdir, files)
        (workdir / SCRIPT_NAME).write_text(code, encoding="utf-8")
        return self.sandbox.run_python(SCRIPT_NAME, workdir, limits=limits)


def _register_stage_requirements() -> None:
    from .detection import requirements as pysg_requirements

    REQUIREMENTS.update(pysg_requirements())


_register_stage_requirements()
