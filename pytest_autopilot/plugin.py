"""pytest-autopilot: an index of its hooks (each concern lives in its module)."""

from __future__ import annotations

from pytest_autopilot import collect, hookspec
from pytest_autopilot.cases.spec import is_case_file
from pytest_autopilot.session import SESSION_KEY, AutopilotSession, XdistHooks
from pytest_autopilot.settings import add_options


def pytest_addhooks(pluginmanager):
    pluginmanager.add_hookspecs(hookspec)


def pytest_addoption(parser):
    add_options(parser)


def pytest_collect_file(file_path, parent):
    session = parent.config.stash.get(SESSION_KEY, None)
    if session is not None and is_case_file(file_path, session.cases_dir):
        return collect.CaseFile.from_parent(parent, path=file_path)
    return None


def pytest_configure(config):
    for name, text in collect.MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    session = AutopilotSession(config)
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(session, "autopilot_session")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(session), "autopilot_xdist")
    config.hook.pytest_autopilot_register(registry=session.registry)
    config.hook.pytest_autopilot_configure(config=config, session=session)
