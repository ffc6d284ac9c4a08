"""Hooks a project's conftest (or another plugin) implements to extend pytest-autopilot.

Registries are the session's own (``pytest_autopilot_register`` fills them); no module
global of the plugin is mutated, so two sessions in one process (pytester) never mix."""

from __future__ import annotations


def pytest_autopilot_register(registry):
    """Add or override parts before any case is collected; ``registry`` is the session's
    ``loop.registries.Registries``.

    ``registry.executor(name, factory)``: ``factory(ctx: executors.ExecutorContext)`` returns an
    object with ``sandbox`` and ``execute(code, workdir, files, limits) -> ExecResult``.
    ``registry.oracle(name, func, params=Model)``: ``func(ctx: oracles.OracleContext) -> Verdict``.
    ``registry.toolchain(name, check, install)``: what ``requires.toolchains: [name]`` means.
    ``registry.legacy_check(name, func)``: ``func(execution) -> Verdict``, named by ``legacy:``.
    ``registry.repair_strategy(name, func)``: ``func(failed: loop.strategies.FailedAttempt) -> messages``.
    """


def pytest_autopilot_configure(config, session):
    """Called once the autopilot session (settings, models, registries) is built."""
