"""Toolchains a case may require (``requires.toolchains``). Each toolchain module declares its
requirements as :class:`Requirement` constants, named in ``BUILTIN`` ("module:CONSTANT", imported
on the first check); each session copies the table into its own registry (``core.registry``),
where a conftest adds its own. A missing one fails (or skips) only the cases that name it, with
the exact install command. The checks are cheap: no network, no heavy import."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Mapping

from pytest_autopilot.core.errors import ToolchainMissing
from pytest_autopilot.core.registry import Registry

__all__ = ["BUILTIN", "Requirement", "ToolchainMissing", "check_requirements", "module_available", "requirement"]


@dataclass(frozen=True)
class Requirement:
    check: Callable[[], bool]
    hint: str


_TC = "pytest_autopilot.toolchains"
# What ``requires.toolchains: [name]`` means: name -> "module:CONSTANT" (a Requirement).
BUILTIN: Mapping[str, str] = MappingProxyType({
    "python": f"{_TC}.python:PYTHON",
    "pandas": f"{_TC}.python:PANDAS",
    "numpy": f"{_TC}.python:NUMPY",
    "tensorflow": f"{_TC}.python:TENSORFLOW",
    "litert": f"{_TC}.python:LITERT",
    "tflite_micro": f"{_TC}.python:TFLITE_MICRO",
    "tflite": f"{_TC}.python:TFLITE",
    "arduino-avr": f"{_TC}.arduino:ARDUINO_AVR",
    "simavr": f"{_TC}.arduino:SIMAVR",
    "arduino-cli-nano33ble": f"{_TC}.arduino:ARDUINO_CLI_NANO33BLE",
    "arm-none-eabi": f"{_TC}.armgcc:ARM_NONE_EABI",
    "qemu-arm": f"{_TC}.armgcc:QEMU_ARM",
    "opencv": f"{_TC}.vision:OPENCV",
    "ocr": f"{_TC}.vision:OCR",
    "sshd": f"{_TC}.vision:SSHD",
    "coral": f"{_TC}.vision:CORAL",
    "litert_quiet_fallback": f"{_TC}.litert_fix:LITERT_QUIET_FALLBACK",
})


def module_available(name: str) -> Callable[[], bool]:
    return lambda: importlib.util.find_spec(name) is not None


def requirement(name: str) -> Requirement:
    """A built-in requirement by name (tests and tools; runs use the session's registry)."""
    return Registry("toolchain", BUILTIN).get(name)


def check_requirements(names: list[str], toolchains: Registry) -> None:
    """Raise ToolchainMissing (one line, with the install command) for the first name not met."""
    for name in names:
        if name not in toolchains:
            raise ToolchainMissing(f"requires.toolchains: {toolchains.unknown(name)}")
        req: Requirement = toolchains.get(name)
        if not req.check():
            raise ToolchainMissing(f"toolchain {name!r} is not installed; install it with: {req.hint}")
