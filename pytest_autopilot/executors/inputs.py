"""User-supplied inputs. The paper's own assets (SSD-MobileNet ``detect.tflite``,
``labelmap.txt``, ``sheeps.mp4``) are not part of the repository: a case names them under
``context.external_inputs = {env: VAR, workspace: {work-dir path: file name}}`` and the user
points ``$VAR`` at the folder holding them. Every executor lays them out with the workspace."""

from __future__ import annotations

import os
from pathlib import Path

from pytest_autopilot.core.errors import ToolchainMissing

EXTERNAL_HINT = "export {env}=/path/to/dir  # holding {files}"


def external_files(external: dict) -> dict[str, Path]:
    """Work-dir path -> file in the folder named by ``$env``; ToolchainMissing when absent."""
    env = external["env"]
    files = external.get("workspace", {})
    folder = os.environ.get(env)
    hint = EXTERNAL_HINT.format(env=env, files=", ".join(sorted(set(files.values()))))
    if not folder:
        raise ToolchainMissing(f"the case's inputs are user-supplied: set ${env}; {hint}")
    resolved = {dest: Path(folder) / name for dest, name in files.items()}
    missing = sorted(name for name, path in zip(files.values(), resolved.values()) if not path.is_file())
    if missing:
        raise ToolchainMissing(f"${env} does not hold {', '.join(missing)}; {hint}")
    return resolved


def external_available(env: str, files: list[str]) -> bool:
    folder = os.environ.get(env)
    return bool(folder) and all((Path(folder) / name).is_file() for name in files)


class WithExternalInputs:
    """Wraps an executor: the case's user-supplied files are laid out with its workspace."""

    def __init__(self, executor, external: dict):
        self.executor = executor
        self.external = external

    @property
    def sandbox(self):
        return self.executor.sandbox

    def execute(self, code, workdir, files, limits):
        return self.executor.execute(code, workdir, {**files, **external_files(self.external)}, limits)


def with_external_inputs(case, executor):
    """The executor, wrapped when the case has ``context.external_inputs``."""
    external = case.spec.context.get("external_inputs")
    return WithExternalInputs(executor, external) if external else executor
