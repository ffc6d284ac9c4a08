"""Where generated code runs. An executor turns (code, input files, limits) into an
``ExecResult`` in a sandbox work dir; a case names one with ``executor:`` (default: its
stage's, from ``core.stages``).

Executors are registered by name with a lazy factory (``"module:function"`` in ``BUILTIN``, held
by a ``core.registry.Registry``), so naming one costs nothing until a case runs on it, and a
missing dependency fails only those cases. A user's conftest adds or overrides executors
through the ``pytest_autopilot_register`` hook.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping, Protocol

from pytest_autopilot.core.records import ExecResult
from pytest_autopilot.core.registry import Lazy, Registry

INPUT_FILES = Mapping[str, "Path | bytes"]


class Executor(Protocol):
    """Runs one program: lays out ``files`` and the code in ``workdir``, runs it there."""

    sandbox: Any  # executors.sandbox.Sandbox: work dirs come from it

    def execute(self, code: str, workdir: Path, files: INPUT_FILES, limits) -> ExecResult: ...


class SharedResources:
    """Session-lifetime objects (a warm fork server, SSH connections, a harness-run sshd),
    built on first use and closed when the session ends, whatever executor made them."""

    def __init__(self):
        self._items: dict[Any, tuple[Any, Callable[[Any], None]]] = {}

    def get(self, key: Any, make: Callable[[], Any], close: Callable[[Any], None] = lambda obj: obj.close()) -> Any:
        if key not in self._items:
            self._items[key] = (make(), close)
        return self._items[key][0]

    def close(self) -> None:
        items, self._items = list(self._items.values()), {}
        for obj, close in reversed(items):
            close(obj)


@dataclass
class ExecutorContext:
    """What a factory may use to build an executor for one case."""

    case: Any  # cases.spec.Case
    sandbox: Any  # executors.sandbox.Sandbox
    shared: SharedResources
    options: dict[str, Any] = field(default_factory=dict)  # session settings, e.g. {"hil": True}


Factory = Callable[[ExecutorContext], Executor]

# name -> "module:factory" (a core.registry.Lazy when it needs an optional package), copied into each
# session's registry (core.registry), where a conftest adds its own.
BUILTIN: Mapping[str, Any] = MappingProxyType({
    "python": "pytest_autopilot.executors.local:python_executor",
    "warm-tensorflow": "pytest_autopilot.executors.warm:warm_executor",
    "warm-pandas": "pytest_autopilot.executors.warm:warm_pandas_executor",
    "ssh": Lazy("pytest_autopilot.executors.ssh:ssh_executor", needs=("paramiko",),
                install="pip install paramiko  # or: pip install 'pytest-autopilot[pysg]'"),
    "arduino": "pytest_autopilot.executors.firmware:arduino_executor",
    "arm-none-eabi": "pytest_autopilot.executors.firmware:arm_executor",
})


def create_executor(executors: Registry, name: str, ctx: ExecutorContext) -> Executor:
    """The case's executor from the session's registry, with its user-supplied inputs
    (``context.external_inputs``) laid out too."""
    from pytest_autopilot.executors.inputs import with_external_inputs

    factory: Factory = executors.get(name)
    return with_external_inputs(ctx.case, factory(ctx))
