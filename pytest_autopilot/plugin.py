"""pytest-autopilot: an index of its hooks and fixtures (each concern lives in its module)."""

from __future__ import annotations

import pytest

from . import collect, runner
from .session import RESULT_PROPERTY, AutopilotSession, XdistHooks, dump_result
from .settings import add_options


def pytest_addoption(parser):
    add_options(parser)


def pytest_configure(config):
    for name, text in collect.MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    session = AutopilotSession(config)
    config._autopilot = session
    config.pluginmanager.register(session, "autopilot_session")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(session), "autopilot_xdist")


@pytest.fixture(scope="session")
def autopilot_session(pytestconfig) -> AutopilotSession:
    """The autopilot session: settings, selected LLMs, sandbox, journal."""
    return pytestconfig._autopilot


@pytest.fixture
def autopilot_variant(request):
    """What this item evaluates: (case, LLM, repetition) or a self-test solution."""
    return request.param


@pytest.fixture
def autopilot_result(request, autopilot_session, autopilot_variant):
    """Runs the item's variant; ``.check()`` fails the test with a one-line reason."""
    return _Result(request.node, autopilot_session, autopilot_variant)


class _Result:
    def __init__(self, item, session, variant):
        self.item, self.session, self.variant = item, session, variant

    def check(self) -> None:
        if self.variant.self_test:
            problem = runner.run_self_test(self.session, self.variant)
        else:
            record = runner.run_variant(self.session, self.item.nodeid, self.variant)
            self.item.user_properties.append((RESULT_PROPERTY, dump_result(record)))
            problem = runner.outcome_message(record)
        if problem:
            pytest.fail(problem, pytrace=False)
