"""pytest-autopilot: an index of its hooks (each concern lives in its module).

Inert unless the project opts in with the ini key ``autopilot_cases_dir``: at every pytest start
this module only registers the hook specs, the options and ini keys. The session, the case
collector and the markers (and with them pydantic, yaml, jinja2, ...) come only with the opt-in.
"""

from __future__ import annotations

from pytest_autopilot import hookspec
from pytest_autopilot.settings import add_options, opted_in, refuse_settings_without_opt_in


def pytest_addhooks(pluginmanager):
    pluginmanager.add_hookspecs(hookspec)


def pytest_addoption(parser):
    add_options(parser)


class CaseCollector:
    """Registered only in an opted-in project: claims the case files under its cases folder."""

    def __init__(self, session):
        self.session = session

    def pytest_collect_file(self, file_path, parent):
        from pytest_autopilot import collect
        from pytest_autopilot.cases.spec import is_case_file

        if is_case_file(file_path, self.session.cases_dir):
            return collect.CaseFile.from_parent(parent, path=file_path)
        return None


def pytest_configure(config):
    if not opted_in(config):
        refuse_settings_without_opt_in(config)
        return
    from pytest_autopilot import collect
    from pytest_autopilot.distribution import XdistHooks
    from pytest_autopilot.session import SESSION_KEY, AutopilotSession

    for name, text in collect.MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    session = AutopilotSession(config)
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(session, "autopilot_session")
    config.pluginmanager.register(CaseCollector(session), "autopilot_collector")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(session), "autopilot_xdist")
    config.hook.pytest_autopilot_register(registry=session.registries)
    config.hook.pytest_autopilot_configure(config=config, session=session)
