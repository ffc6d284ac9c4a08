"""The session's registries: one ``core.registry.Registry`` per kind of part, filled from the
built-in declarations and by conftests. This is what ``pytest_autopilot_register(registry)``
receives, and what collection checks and the repair loop look parts up in."""

from __future__ import annotations

from typing import Any, Callable

from pytest_autopilot import executors, oracles, toolchains
from pytest_autopilot.core.registry import Registry
from pytest_autopilot.loop import strategies


class Registries:
    """Executors, oracles and their params models, toolchain requirements, legacy checks and repair
    strategies of one session (two sessions in one process never share one)."""

    def __init__(self):
        self.executors = Registry("executor", executors.BUILTIN)
        self.oracles = Registry("oracle", oracles.BUILTIN)
        self.oracle_params = Registry("oracle", oracles.BUILTIN_PARAMS)  # a model, or None: params unchecked
        self.toolchains = Registry("toolchain", toolchains.BUILTIN)
        self.legacy_checks = Registry("legacy check", oracles.BUILTIN_LEGACY)
        self.strategies = Registry("repair strategy", strategies.BUILTIN)

    def executor(self, name: str, factory: Callable[[executors.ExecutorContext], Any]) -> None:
        """``factory(ctx: executors.ExecutorContext)`` returns an object with ``sandbox`` and
        ``execute(code, workdir, files, limits) -> ExecResult``."""
        self.executors.add(name, factory)

    def oracle(self, name: str, func: oracles.Oracle, params: oracles.ParamsDeclaration = None) -> None:
        """``params``: a pydantic model of the params ``func`` reads (or its "module:Class", or a list of
        names); collection validates each case's params with it, one line per mistake. Without one,
        the params are not checked."""
        self.oracles.add(name, func)
        self.oracle_params.add(name, params if params is None or isinstance(params, (str, type))
                               else oracles.params_model(params))

    def toolchain(self, name: str, check: Callable[[], bool], install: str) -> None:
        """What ``requires.toolchains: [name]`` means: ``check()`` says whether it is installed,
        ``install`` is the exact command that installs it."""
        self.toolchains.add(name, toolchains.Requirement(check, install))

    def legacy_check(self, name: str, func: Callable[[Any], Any]) -> None:
        """A paper-style check ``func(execution: ExecResult | None) -> Verdict`` a stage or a step's
        ``legacy:`` names."""
        self.legacy_checks.add(name, func)

    def repair_strategy(self, name: str, func: Callable[[strategies.FailedAttempt], list[dict[str, str]]]) -> None:
        """How a failed attempt is fed back: ``func(failed)`` returns the next prompt's messages."""
        self.strategies.add(name, func)
