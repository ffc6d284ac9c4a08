"""The CPU gate: at most N holders of a slot across processes, a slot freed when its holder fails
or is killed, the wait recorded on the attempt apart from the run (whose timeout does not count
it), no slot held while the model is asked; and, end to end under xdist, never more CPU-heavy
attempts at once than ``--autopilot-cpu-slots``, measured from the journal."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import datetime

import pandas as pd
import pytest

from pytest_autopilot.core.errors import HarnessError
from pytest_autopilot.executors.local import PythonExecutor
from pytest_autopilot.executors.sandbox import Limits, Sandbox
from pytest_autopilot.loop.cpu_gate import CpuGate
from pytest_autopilot.loop.repair import Answer, LoopSettings, RepairLoop
from pytest_autopilot.loop.registries import Registries

DEADLINE_S = 60.0  # for anything that should happen at once, on a loaded machine
# takes a slot after the "go" file appears, holds it HOLD_S, ROUNDS times, logging "start end" per hold
HOLDER = """
import sys, time
from pathlib import Path
from pytest_autopilot.loop.cpu_gate import CpuGate
folder, slots, rounds, hold_s, go, log = sys.argv[1:]
while not Path(go).exists():
    time.sleep(0.01)
gate = CpuGate(int(slots), folder)
for _ in range(int(rounds)):
    with gate.slot():
        start = time.time()
        print("held", flush=True)
        time.sleep(float(hold_s))
        end = time.time()  # before the release: the next holder's start is later
    with open(log, "a") as fh:
        fh.write(f"{start} {end}\\n")
"""


def most_at_once(spans) -> int:
    """The largest number of (start, end) spans open at one moment; an end and a start at the same
    moment do not overlap."""
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])  # -1 sorts first
    most = current = 0
    for _, step in events:
        current += step
        most = max(most, current)
    return most


def holder(tmp_path, folder, slots, rounds, hold_s, name):
    log = tmp_path / f"{name}.log"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), str(slots), str(rounds), str(hold_s),
                             str(tmp_path / "go"), str(log)], stdout=subprocess.PIPE, text=True)
    return proc, log


def taken_within(gate: CpuGate, seconds: float):
    """The SlotHold when ``gate`` gives a slot within ``seconds`` (from a thread), else None."""
    got = []
    done = threading.Event()

    def take():
        with gate.slot() as hold:
            got.append(hold)
        done.set()

    threading.Thread(target=take, daemon=True).start()
    return got[0] if done.wait(seconds) else None


def test_never_more_holders_than_slots_across_processes(tmp_path):
    folder = tmp_path / "slots"
    procs = [holder(tmp_path, folder, 2, 3, 0.3, f"p{i}") for i in range(6)]
    (tmp_path / "go").touch()
    for proc, _ in procs:
        assert proc.wait(timeout=DEADLINE_S * 2) == 0
    spans = [tuple(map(float, line.split())) for _, log in procs for line in log.read_text().splitlines()]
    assert len(spans) == 18
    assert most_at_once(spans) == 2  # six processes wanting a slot all along: both slots in use, never a third


def test_a_slot_is_freed_when_its_holder_fails_or_is_killed(tmp_path):
    gate = CpuGate(1, tmp_path / "slots")
    with pytest.raises(RuntimeError):
        with gate.slot():
            raise RuntimeError("the build crashed")
    assert taken_within(gate, DEADLINE_S) is not None

    proc, _ = holder(tmp_path, tmp_path / "slots", 1, 1, 3600, "killed")
    (tmp_path / "go").touch()
    assert proc.stdout.readline().strip() == "held"
    assert taken_within(gate, 0.5) is None  # held by the other process
    proc.kill()
    proc.wait()
    assert taken_within(gate, DEADLINE_S) is not None  # the kernel released the dead holder's lock


def test_zero_slots_is_a_one_line_error(tmp_path):
    with pytest.raises(HarnessError) as err:
        CpuGate(0, tmp_path)
    assert str(err.value).startswith("--autopilot-cpu-slots 0: expected at least 1 (default: the ")
    assert "\n" not in str(err.value)
    assert CpuGate(None, tmp_path).slots >= 1  # default: the usable cores


LIMITS = Limits(timeout_s=4, cpu_s=20, memory_mb=2048, processes=32, output_bytes=10_000)
WRITES_41 = "```python\nopen('out.txt', 'w').write('41')\n```"
SLEEPY_42 = "```python\nimport time\ntime.sleep(0.5)\nopen('out.txt', 'w').write('42')\n```"


def toy_loop(case, answer_42, tmp_path, ask) -> RepairLoop:
    registry = Registries()
    registry.oracle("answer_42", answer_42)
    return RepairLoop(case, ask, PythonExecutor(Sandbox(LIMITS, base_dir=tmp_path / "work")),
                      LoopSettings(2, 2000, "first", LIMITS, cpu_slots=1), registries=registry)


def test_the_model_is_asked_without_a_slot(case, answer_42, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOPILOT_CACHE_DIR", str(tmp_path / "cache"))  # the gate's folder: cache_dir("cpu-slots")
    other = CpuGate(1)
    free_while_asked = []

    def ask(messages, meta):
        free_while_asked.append(taken_within(other, DEADLINE_S) is not None)
        return Answer(WRITES_41 if meta["attempt"] == 1 else SLEEPY_42)

    result = toy_loop(case, answer_42, tmp_path, ask).run()
    assert result.strict_success and free_while_asked == [True, True]
    first, second = result.attempts
    assert first.cpu_finished_at <= second.cpu_started_at  # the slot was given back before the repair was asked


def test_the_wait_is_recorded_apart_and_the_timeout_measures_the_run(case, answer_42, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOPILOT_CACHE_DIR", str(tmp_path / "cache"))
    loop = toy_loop(case, answer_42, tmp_path,
                    lambda messages, meta: Answer("no code, just words" if meta["attempt"] == 1 else SLEEPY_42))
    proc, _ = holder(tmp_path, loop.cpu_gate.folder, 1, 1, 2 * LIMITS.timeout_s, "busy")  # twice the timeout
    (tmp_path / "go").touch()
    assert proc.stdout.readline().strip() == "held"
    result = loop.run()
    proc.wait(timeout=DEADLINE_S)

    no_code, ran = result.attempts
    assert (no_code.cpu_wait_s, no_code.cpu_started_at) == (None, None)  # nothing to run: no slot taken
    assert result.strict_success, ran.execution
    assert ran.cpu_wait_s > LIMITS.timeout_s  # waited longer than the timeout, and the run still was not killed
    assert not ran.execution.timed_out and ran.execution.duration_s < LIMITS.timeout_s
    assert ran.cpu_started_at <= ran.cpu_finished_at


def test_xdist_workers_never_run_more_cpu_heavy_attempts_than_slots(toy_project, pytester, monkeypatch):
    monkeypatch.setenv("AUTOPILOT_CACHE_DIR", str(toy_project / "cache"))  # slots of this test alone
    case = toy_project / "cases/toy/answer.yaml"
    standin = case.read_text().split("standin:\n")[1].split("repair:")[0]
    case.write_text(case.read_text().replace(standin, "  - {code: [reference]}\n"))
    (toy_project / "cases/toy/answer/solutions/reference.py").write_text(
        'import time\ntime.sleep(1.0)\nopen("out.txt", "w").write("42")\n')
    result = pytester.runpytest_subprocess("cases", "-n", "4", "--autopilot-cpu-slots", "1", "--autopilot-runs", "8",
                                           "--record-mode", "once", "--autopilot-run-id", "gate", timeout=600)
    result.assert_outcomes(passed=8)

    report = toy_project / "reports/gate"
    entries = [json.loads(line) for path in (report / "journal").glob("gw*.jsonl")
               for line in path.read_text().splitlines()]
    attempts = [e["attempt"] for e in entries if e["type"] == "attempt"]
    assert len(attempts) == 8 and len({e["run"]["worker"] for e in entries if e["type"] == "start"}) > 1
    spans = [(_utc(a["cpu_started_at"]), _utc(a["cpu_finished_at"])) for a in attempts]
    assert most_at_once(spans) == 1
    assert all(a["execution"]["duration_s"] >= 1.0 for a in attempts)
    assert any(a["cpu_wait_s"] > 0 for a in attempts)  # four workers, one slot: some waited

    runs = json.loads((report / "results.json").read_text())["runs"]
    waits = sorted(a["cpu_wait_s"] for r in runs for a in r["attempts"])
    assert waits == sorted(a["cpu_wait_s"] for a in attempts)
    assert sorted(pd.read_csv(report / "attempts.csv")["cpu_wait_s"]) == pytest.approx(waits)


def test_zero_slots_is_a_one_line_usage_error_before_anything_runs(toy_project, pytester):
    result = pytester.runpytest("cases", "-p", "no:xdist", "--autopilot-cpu-slots", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--autopilot-cpu-slots" in result.stderr.str() and "Traceback" not in result.stderr.str()
    assert not (toy_project / "reports").exists() or not list((toy_project / "reports").rglob("results.json"))


def _utc(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_most_at_once_counts_touching_spans_apart():
    assert most_at_once([(0, 1), (1, 2), (2, 3)]) == 1
    assert most_at_once([(0, 2), (1, 3), (1.5, 1.6)]) == 3
    assert most_at_once([]) == 0
