"""The one registry type: names to parts, for executors, oracles and their params models,
toolchain requirements, legacy checks and repair strategies.

A package declares its built-in parts as data (name -> "module:attr"); each session copies
the declarations into its own :class:`Registry`, where a conftest's
``pytest_autopilot_register`` adds or overrides parts. A part is imported on its first use,
so naming one costs nothing and a missing optional dependency fails only the cases that use
it, with the exact install command. No module global is ever mutated.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any, Mapping

from pytest_autopilot.core.errors import HarnessError, ToolchainMissing
from pytest_autopilot.core.util import did_you_mean

REGISTER_HINT = "or register one in conftest.py"


@dataclass(frozen=True)
class Lazy:
    """A part not imported yet: ``target`` is "module:attr"; ``needs`` are the importable names it
    requires, installed with ``install`` (checked before the import, so the error is that line)."""

    target: str
    needs: tuple[str, ...] = ()
    install: str = ""


class UnknownName(HarnessError, KeyError):
    """A name no part is registered under; the message names the known ones and a close match."""

    def __init__(self, message: str):
        HarnessError.__init__(self, "harness_error", message)

    def __str__(self) -> str:  # KeyError's would quote it
        return str(self.args[0])


class Registry:
    """One kind of part by name. Declarations are "module:attr" strings, :class:`Lazy` entries or
    the parts themselves; a string or ``Lazy`` is imported on the first :meth:`get`."""

    def __init__(self, kind: str, builtin: Mapping[str, Any] = {}):
        self.kind = kind  # "executor", "oracle", ...: what the messages call a part
        self._declared: dict[str, Any] = dict(builtin)
        self._builtin = dict(builtin)
        self._resolved: dict[str, Any] = {}

    def add(self, name: str, part: Any) -> None:
        """Register (or override) ``name``: the part itself, "module:attr" or a :class:`Lazy`."""
        self._declared[name] = part
        self._resolved.pop(name, None)

    def is_builtin(self, name: str) -> bool:
        """Whether ``name`` is the package's own part (declared built in, not overridden)."""
        return name in self._builtin and self._declared[name] is self._builtin[name]

    def names(self) -> list[str]:
        return sorted(self._declared)

    def __contains__(self, name: object) -> bool:
        return name in self._declared

    def unknown(self, name: Any) -> str:
        """The line for a name that is not registered: the known names, the hint, a close match."""
        guess = did_you_mean(name, self.names())
        return (f"unknown {self.kind} {name!r}; known: {', '.join(self.names()) or 'none'} ({REGISTER_HINT})"
                + (f"; did you mean {guess!r}?" if guess else ""))

    def get(self, name: str) -> Any:
        """The part, imported on first use. Raises :class:`UnknownName` for an unregistered name and
        ``ToolchainMissing`` (with the install command) when its optional dependency is absent."""
        if name not in self._declared:
            raise UnknownName(self.unknown(name))
        if name not in self._resolved:
            self._resolved[name] = resolve(self._declared[name], f"{self.kind} {name!r}")
        return self._resolved[name]


def resolve(declared: Any, what: str = "part") -> Any:
    """What a declaration stands for: "module:attr" and :class:`Lazy` are imported, anything else is
    the part itself."""
    if isinstance(declared, str):
        declared = Lazy(declared)
    if not isinstance(declared, Lazy):
        return declared
    missing = [name for name in declared.needs if importlib.util.find_spec(name) is None]
    if missing:
        raise ToolchainMissing(f"{what} needs {', '.join(missing)}, which is not installed; install it with: "
                               f"{declared.install or 'pip install ' + ' '.join(missing)}")
    module, _, attr = declared.target.partition(":")
    return getattr(importlib.import_module(module), attr)

