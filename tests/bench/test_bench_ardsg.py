"""ArdSG benchmarks: the cached Arduino core, simulated-run times and the bound on firmware
that never ends. Run without xdist and read the printed figures:

    .venv/bin/python -m pytest tests/bench/test_bench_ardsg.py -p no:xdist -m bench -s

Targets asserted: a rebuild with the cached core takes at most 30 % of a clean build's wall
time (best of N interleaved builds; asserted when the machine is not overloaded, since other
processes then dominate wall times) and of its CPU time (always: load-independent); a
firmware that never ends costs at most its simulation timeout (+ start-up slack)."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import pytest
import yaml

from pytest_autopilot.cases.boards import load_board
from pytest_autopilot.cases.spec import resolve_references
from pytest_autopilot.executors.firmware import FirmwareExecutor
from pytest_autopilot.executors.sandbox import Limits, Sandbox
from pytest_autopilot.toolchains import arduino, requirement
from pytest_autopilot.toolchains.armgcc import ArmGccToolchain

ROOT = Path(__file__).parents[2]
CASES = ROOT / "cases" / "ardsg"
pytestmark = pytest.mark.bench
REPEATS = 7

AVR, ARM = ("arduino-avr", "simavr"), ("arm-none-eabi", "qemu-arm")
REQUIREMENTS = {name: requirement(name) for name in (*AVR, *ARM)}
needs_avr = pytest.mark.skipif(not all(REQUIREMENTS[n].check() for n in AVR),
                               reason="install: " + "; ".join(REQUIREMENTS[n].hint for n in AVR))
needs_arm = pytest.mark.skipif(not all(REQUIREMENTS[n].check() for n in ARM),
                               reason="install: " + "; ".join(REQUIREMENTS[n].hint for n in ARM))


def _case(name: str):
    path = CASES / f"{name}.yaml"
    raw = resolve_references(path, yaml.safe_load(path.read_text()))
    board = load_board((ROOT / "hardware").resolve(), raw["board"])
    files = {dest: (CASES / raw["assets"][asset]).resolve() for dest, asset in raw["workspace"].items()}
    return raw, board, files


def _solution(name: str, stem: str) -> str:
    return next((CASES / name / "solutions").glob(f"{stem}.*")).read_text()


def _execute(executor: FirmwareExecutor, code: str, files, limits=Limits(timeout_s=120)):
    sandbox = executor.sandbox
    workdir = sandbox.new_workdir(prefix="ardsg-bench-")
    try:
        started = time.perf_counter()
        result = executor.execute(code, workdir, files, limits)
        return time.perf_counter() - started, result
    finally:
        sandbox.cleanup(workdir)


def _figures(label: str, values: list[float]) -> str:
    return f"{label}: best {min(values):.3f} s, median {statistics.median(values):.3f} s ({', '.join(f'{v:.2f}' for v in values)})"


@needs_avr
def test_rebuild_with_cached_core_vs_clean_build(tmp_path):
    _, board, files = _case("uno_colour_sim")
    sandbox = Sandbox()
    code = _solution("uno_colour_sim", "reference")
    clean = FirmwareExecutor(arduino.ArduinoToolchain(sandbox, board, cache=False), run="none")
    cache = arduino.CoreCache(tmp_path / "core")
    cached = FirmwareExecutor(arduino.ArduinoToolchain(sandbox, board, cache=cache), run="none")
    warm_s, first = _execute(cached, code, files)
    assert first.isolation["build"]["core_cache"] == "warmed"
    times = {"clean": [], "cached": []}
    build_phase = {"clean": [], "cached": []}
    cpu = {"clean": [], "cached": []}
    for _ in range(REPEATS):  # interleaved: load on the machine hits both alike
        for name, executor in (("clean", clean), ("cached", cached)):
            wall, result = _execute(executor, code, files)
            assert result.returncode == 0, result.stderr
            times[name].append(wall)
            build_phase[name].append(result.isolation["build"]["duration_s"])
            cpu[name].append(result.isolation.get("cpu_s_used") or 0.0)
    ratio_best = min(times["cached"]) / min(times["clean"])
    ratio_median = statistics.median(times["cached"]) / statistics.median(times["clean"])
    print()
    print(f"first build with core warm-up (clean + warm-up build): {warm_s:.3f} s")
    print(_figures("clean build (core compiled)        ", times["clean"]))
    print(_figures("rebuild with cached core           ", times["cached"]))
    print(_figures("  build phase only, clean          ", build_phase["clean"]))
    print(_figures("  build phase only, cached         ", build_phase["cached"]))
    print(_figures("  CPU time (user+sys), clean       ", cpu["clean"]))
    print(_figures("  CPU time (user+sys), cached      ", cpu["cached"]))
    print(f"cached / clean wall time: best {ratio_best:.2f}, median {ratio_median:.2f} (target <= 0.30); "
          f"CPU time: {statistics.median(cpu['cached']) / max(statistics.median(cpu['clean']), 1e-9):.2f}")
    cpu_ratio = statistics.median(cpu["cached"]) / statistics.median(cpu["clean"])
    assert cpu_ratio <= 0.30, f"cached rebuild uses {cpu_ratio:.0%} of a clean build's CPU time (target 30 %)"
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1):  # other processes compete for the cores: wall times are noise
        print(f"machine overloaded (load {load:.1f} on {os.cpu_count()} cores): wall-time target reported, not asserted")
    else:
        assert ratio_best <= 0.30, f"cached rebuild {ratio_best:.0%} of a clean build's wall time (target 30 %)"


@needs_avr
def test_simavr_run_time_per_attempt(tmp_path):
    _, board, files = _case("uno_colour_sim")
    executor = FirmwareExecutor(arduino.ArduinoToolchain(Sandbox(), board, cache=arduino.CoreCache(tmp_path / "core")))
    runs, walls = [], []
    for _ in range(3):
        wall, result = _execute(executor, _solution("uno_colour_sim", "reference"), files)
        assert result.returncode == 0 and not result.timed_out
        runs.append(result.isolation["run"]["duration_s"])
        walls.append(wall)
    print()
    print(_figures("simavr run, 24 readings at 9600 baud (isolation['run']['duration_s'])", runs))
    print(_figures("whole attempt (build with cached core + run)", walls))
    assert max(runs) < board.simulator.timeout_s


@needs_arm
def test_qemu_run_time_per_attempt():
    _, board, files = _case("mps2_colour_qemu")
    executor = FirmwareExecutor(ArmGccToolchain(Sandbox(), board))
    runs, builds, walls = [], [], []
    for _ in range(3):
        wall, result = _execute(executor, _solution("mps2_colour_qemu", "reference"), files)
        assert result.returncode == 0 and not result.timed_out
        runs.append(result.isolation["run"]["duration_s"])
        builds.append(result.isolation["build"]["duration_s"])
        walls.append(wall)
    print()
    print(_figures("QEMU mps2-an385 run, 24 readings", runs))
    print(_figures("arm-none-eabi-gcc build", builds))
    print(_figures("whole attempt", walls))
    assert max(runs) < board.simulator.timeout_s


@needs_avr
@pytest.mark.parametrize("timeout_s", [2.0, 5.0])
def test_never_ending_firmware_costs_its_timeout(tmp_path, timeout_s):
    _, board, files = _case("uno_colour_sim")
    board = board.model_copy(update={"simulator": board.simulator.model_copy(update={"timeout_s": timeout_s})})
    executor = FirmwareExecutor(arduino.ArduinoToolchain(Sandbox(), board, cache=arduino.CoreCache(tmp_path / "core")))
    _execute(executor, _solution("uno_colour_sim", "reference"), files)  # warm the core cache
    wall, result = _execute(executor, _solution("uno_colour_sim", "bad_infinite_loop"), files)
    run = result.isolation["run"]
    print()
    print(f"endless firmware, simulation timeout {timeout_s:g} s: run {run['duration_s']:.3f} s, "
          f"build {result.isolation['build']['duration_s']:.3f} s, attempt {wall:.3f} s")
    assert result.timed_out and run["duration_s"] <= timeout_s + 1.0
    assert wall <= result.isolation["build"]["duration_s"] + timeout_s + 3.0
