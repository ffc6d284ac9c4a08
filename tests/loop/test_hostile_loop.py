"""Hostile generated programs driven through the real repair loop (answer, extraction, the real
sandbox, the strict oracle): each is contained, recorded as a failed attempt with a sensible
category, and leaves no process and no work dir behind."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from proc_scan import processes_under

from pytest_autopilot.core.records import Category, Verdict
from pytest_autopilot.executors.local import PythonExecutor
from pytest_autopilot.executors.sandbox import Limits, Sandbox
from pytest_autopilot.loop.repair import Answer, LoopSettings, RepairLoop
from pytest_autopilot.loop.registries import Registries
from pytest_autopilot.oracles import exit_check

REFERENCE = Path(__file__).resolve().parents[2] / "cases/dp/clean_split/solutions/reference.py"
# 5 s, as tests/executors/test_hostile.py's sandbox-level limits: the programs that never end
# (fork bomb, sleeper, 4 GB) cost their limit, and what the loop adds is the same at 5 s as at 20
LIMITS = Limits(timeout_s=5, cpu_s=5, memory_mb=2048, processes=32, output_bytes=10_000)
SETTLE_S = 30.0  # how long a killed process may take to disappear on a loaded machine

# program (MARK is replaced by a unique string), the categories that fit
HOSTILE = {
    "reads_the_answer_key": (f"import runpy, sys\nMARK = 1\nrunpy.run_path({str(REFERENCE)!r})\n",
                             {Category.RUNTIME_ERROR}),
    "fork_bomb": ("import os, time\nMARK = 1\nwhile True:\n    try:\n        os.fork()\n"
                  "    except OSError:\n        time.sleep(0.001)\n", {Category.RESOURCE_LIMIT, Category.TIMEOUT}),
    "four_gigabytes": ("import os, time\nMARK = 1\nfor _ in range(3):\n    os.fork()\n"
                       "blocks = [bytearray(1 << 20) for _ in range(1024)]\ntime.sleep(60)\n",
                       {Category.RESOURCE_LIMIT, Category.TIMEOUT}),
    "sleeps_through_sigterm": ("import signal, time\nMARK = 1\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                               "time.sleep(3600)\n", {Category.TIMEOUT}),
    "orphan": ("import os, time\nMARK = 1\nif os.fork() == 0:\n    if os.fork() == 0:\n        time.sleep(3600)\n"
               "    os._exit(0)\n", {Category.SEMANTIC_MISMATCH, Category.ARTIFACT_MISSING}),
    "floods_stdout": ("import sys\nMARK = 1\nwhile True:\n    sys.stdout.write('x' * 65536)\n",
                      {Category.TIMEOUT, Category.RESOURCE_LIMIT, Category.RUNTIME_ERROR}),
    "kills_its_parent": ("import os, signal\nMARK = 1\nos.kill(os.getppid(), signal.SIGKILL)\n",
                         {Category.RUNTIME_ERROR, Category.SEMANTIC_MISMATCH, Category.ARTIFACT_MISSING}),
    "exit_0_without_artifact": ("MARK = 1\nprint('done')\n", {Category.SEMANTIC_MISMATCH, Category.ARTIFACT_MISSING}),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_program_through_the_loop_is_contained_recorded_and_gone(name, case, answer_42, tmp_path):
    marker = f"hostile{uuid.uuid4().hex}"
    code, categories = HOSTILE[name]
    answer = "```python\n" + code.replace("MARK = 1", f"MARK = {marker!r}") + "```"
    registry = Registries()
    registry.oracle("answer_42", lambda ctx: Verdict.from_checks(
        "answer_42", [c for c in (exit_check(ctx.execution),) if c] + answer_42(ctx).checks))
    base = tmp_path / "work"
    sandbox = Sandbox(LIMITS, base_dir=base)
    loop = RepairLoop(case, lambda messages, meta: Answer(answer), PythonExecutor(sandbox),
                      LoopSettings(1, 2000, "first", LIMITS), registries=registry)
    result = loop.run()
    (attempt,) = result.attempts
    assert not result.strict_success and attempt.category in categories, (attempt.category, attempt.execution)
    if name == "reads_the_answer_key":  # the checkout is not in the program's view
        assert "No such file or directory" in attempt.execution.stderr
    deadline = time.monotonic() + SETTLE_S
    while processes_under(base):
        assert time.monotonic() < deadline, f"{name} left processes behind: {processes_under(base)}"
        time.sleep(0.05)
    assert not [p for p in base.iterdir() if not p.name.startswith(".")], list(base.iterdir())
