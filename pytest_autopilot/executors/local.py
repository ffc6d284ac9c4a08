"""The ``python`` executor: the program runs in a fresh sandbox work dir on this machine."""

from __future__ import annotations

from pathlib import Path

from pytest_autopilot.core.records import ExecResult
from pytest_autopilot.core.util import lay_out

SCRIPT_NAME = "main.py"


class PythonExecutor:
    """Lays out the inputs, writes the code to ``main.py`` and runs it in the sandbox."""

    name = "python"

    def __init__(self, sandbox):
        self.sandbox = sandbox

    def execute(self, code: str, workdir: Path, files, limits) -> ExecResult:
        lay_out(workdir, files)
        (workdir / SCRIPT_NAME).write_text(code, encoding="utf-8")
        return self.sandbox.run_python(SCRIPT_NAME, workdir, limits=limits)


def python_executor(ctx) -> PythonExecutor:
    return PythonExecutor(ctx.sandbox)
