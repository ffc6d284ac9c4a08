"""Hostile generated programs driven through the real repair loop (answer, extraction, the real
sandbox, the strict oracle): each is contained, recorded as a failed attempt with a sensible
category, and leaves no process and no work dir behind."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from pytest_autopilot.cases.spec import load_case
from pytest_autopilot.core.records import Category, Check, Verdict
from pytest_autopilot.executors.local import PythonExecutor
from pytest_autopilot.executors.sandbox import Limits, Sandbox
from pytest_autopilot.loop.repair import Answer, LoopSettings, RepairLoop
from pytest_autopilot.oracles import OracleRegistry, exit_check

REFERENCE = Path(__file__).resolve().parents[2] / "cases/dp/clean_split/solutions/reference.py"
LIMITS = Limits(timeout_s=20, cpu_s=20, memory_mb=2048, processes=32, output_bytes=10_000)
SETTLE_S = 30.0  # how long a killed process may take to disappear on a loaded machine

CASE = """\
stage: DP
description: write the answer
steps:
  - name: code
    prompt: task.j2
    oracle: {name: answer_42}
solutions:
  reference: {code: ref.py}
standin:
  - {code: [ref]}
"""

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


def answer_42(ctx) -> Verdict:
    path = ctx.workdir / "out.txt"
    text = path.read_text() if path.is_file() else None
    checks = [c for c in (exit_check(ctx.execution),) if c] + [Check("value", text == "42", f"out.txt holds {text!r}")]
    return Verdict.from_checks("answer_42", checks)


def _processes_in(base: Path) -> list[int]:
    """Live processes whose working directory lies under the run's sandbox base dir."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                if os.readlink(f"/proc/{entry}/cwd").startswith(str(base)):
                    found.append(int(entry))
            except OSError:
                pass
    return found


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_program_through_the_loop_is_contained_recorded_and_gone(name, tmp_path):
    prompts = tmp_path / "prompts"
    (prompts / "common").mkdir(parents=True)
    (prompts / "task.j2").write_text("Write 42 to out.txt.")
    (prompts / "common/repair.j2").write_text("{{ task }}\n{{ previous_answer }}\n{{ error }}")
    (tmp_path / "ref.py").write_text("open('out.txt', 'w').write('42')\n")
    (tmp_path / "case.yaml").write_text(CASE)
    case = load_case(tmp_path / "case.yaml", prompts)
    marker = f"hostile{uuid.uuid4().hex}"
    code, categories = HOSTILE[name]
    answer = "```python\n" + code.replace("MARK = 1", f"MARK = {marker!r}") + "```"
    registry = OracleRegistry()
    registry.register("answer_42", answer_42)
    base = tmp_path / "work"
    sandbox = Sandbox(LIMITS, base_dir=base)
    loop = RepairLoop(case, lambda messages, meta: Answer(answer), PythonExecutor(sandbox),
                      LoopSettings(1, 2000, "first", LIMITS), oracles=registry)
    result = loop.run()
    (attempt,) = result.attempts
    assert not result.strict_success and attempt.category in categories, (attempt.category, attempt.execution)
    if name == "reads_the_answer_key":  # the checkout is not in the program's view
        assert "No such file or directory" in attempt.execution.stderr
    deadline = time.monotonic() + SETTLE_S
    while _processes_in(base):
        assert time.monotonic() < deadline, f"{name} left processes behind: {_processes_in(base)}"
        time.sleep(0.05)
    assert not [p for p in base.iterdir() if not p.name.startswith(".")], list(base.iterdir())
