"""The ``python`` executor: the program runs in a fresh sandbox work dir on this machine, with
the harness's interpreter or, when the case or its board declares software, with that
environment's (:mod:`pytest_autopilot.executors.environments`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path, PurePosixPath

from pytest_autopilot.core.records import ExecResult
from pytest_autopilot.core.util import lay_out

SCRIPT_NAME = "main.py"


class PythonExecutor:
    """Lays out the inputs, writes the code to ``script`` (default ``main.py``; a faithful case
    puts it where the paper's harness saved it) and runs it from the work dir in the sandbox."""

    name = "python"

    def __init__(self, sandbox, environment=None, script: str = SCRIPT_NAME):
        self.sandbox = sandbox
        self.environment = environment  # environments.Environment, or None: the harness's interpreter
        self.script = script

    def execute(self, code: str, workdir: Path, files, limits) -> ExecResult:
        lay_out(workdir, files)
        path = workdir / self.script
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(code, encoding="utf-8")
        if self.environment is None:
            return self.sandbox.run_python(self.script, workdir, limits=limits)
        env = self.environment
        result = self.sandbox.run(env.argv(self.script), workdir, limits=limits, interpreter_trees=env.trees())
        # which software ran it, and that the code ran as generated: the report's fidelity record
        isolation = {**result.isolation, "environment": env.describe(), "code_rewritten": False}
        return dataclasses.replace(result, isolation=isolation)


def script_path(case) -> str:
    """``context.script_path`` of the case (relative, inside the work dir), else ``main.py``."""
    rel = str(case.spec.context.get("script_path") or SCRIPT_NAME)
    parts = PurePosixPath(rel).parts
    if PurePosixPath(rel).is_absolute() or ".." in parts or not rel.endswith(".py"):
        from pytest_autopilot.cases.spec import CaseError

        raise CaseError(f"{case.path}: field context.script_path: {rel!r} must be a relative .py path inside the "
                        "work dir, e.g. results/sketches/run/run.py")
    return rel


def python_executor(ctx) -> PythonExecutor:
    from pytest_autopilot.executors.environments import ensure_for_case

    return PythonExecutor(ctx.sandbox, ensure_for_case(ctx.case), script_path(ctx.case))
