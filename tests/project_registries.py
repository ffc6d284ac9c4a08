"""The registries a session of this repository has: the plugin's built-in parts plus what the
repository's top-level conftest.py registers (the paper-faithful cases' requirements)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from pytest_autopilot.loop.registries import Registries

ROOT = Path(__file__).parents[1]


def project_conftest():
    spec = importlib.util.spec_from_file_location("autopilot_project_conftest", ROOT / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def project_registries() -> Registries:
    registries = Registries()
    project_conftest().pytest_autopilot_register(registries)
    return registries
