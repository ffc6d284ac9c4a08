"""Toolchains a case may require (``requires.toolchains``). Each toolchain module registers its
own requirements with :func:`requirement`; a missing one fails (or skips) only the cases that
name it, with the exact install command. The checks are cheap: no network, no heavy import."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Callable

from pytest_autopilot.core.errors import ToolchainMissing

__all__ = ["Requirement", "ToolchainMissing", "check_requirements", "known", "module_available", "requirement"]

# Modules registering requirements, imported on the first check (each is light).
MODULES = ("pytest_autopilot.toolchains.python", "pytest_autopilot.toolchains.arduino",
           "pytest_autopilot.toolchains.armgcc", "pytest_autopilot.toolchains.vision",
           "pytest_autopilot.toolchains.litert_fix")


@dataclass(frozen=True)
class Requirement:
    check: Callable[[], bool]
    hint: str


REQUIREMENTS: dict[str, Requirement] = {}


def requirement(name: str, check: Callable[[], bool], hint: str) -> None:
    """Register what ``requires.toolchains: [name]`` means (called by toolchain modules at import)."""
    REQUIREMENTS[name] = Requirement(check, hint)


def module_available(name: str) -> Callable[[], bool]:
    return lambda: importlib.util.find_spec(name) is not None


def known() -> dict[str, Requirement]:
    for module in MODULES:
        importlib.import_module(module)
    return REQUIREMENTS


def check_requirements(names: list[str]) -> None:
    """Raise ToolchainMissing (one line, with the install command) for the first name not met."""
    registry = known()
    for name in names:
        req = registry.get(name)
        if req is None:
            raise ToolchainMissing(f"unknown toolchain {name!r} in requires.toolchains (known: {', '.join(sorted(registry))})")
        if not req.check():
            raise ToolchainMissing(f"toolchain {name!r} is not installed; install it with: {req.hint}")
