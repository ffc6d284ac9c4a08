"""The ``arduino`` and ``arm-none-eabi`` executors of the ArdSG stage: the board's toolchain
builds the firmware (:mod:`pytest_autopilot.toolchains.arduino`,
:mod:`pytest_autopilot.toolchains.armgcc`), then it runs on the board's simulator
(:mod:`~pytest_autopilot.executors.simulators`), on a real board with ``--autopilot-hil``
(:mod:`~pytest_autopilot.executors.serial_hil`), or not at all when the board has neither
(``run: none``: the build is the whole execution).

Every build and simulation runs through :class:`~pytest_autopilot.executors.sandbox.Sandbox`
(compilers and simulators get generated input). What the loop gets:

* build failed: ``returncode`` of the build (non-zero), ``stdout``/``stderr`` = compiler
  output with the work dir stripped from paths (``sketch/sketch.ino:12:3: error: ...``),
  ``isolation["phase"] == "build"``.
* build passed: ``returncode``/``timed_out`` of the run, ``stdout`` = the firmware's output
  (UART or semihosting text, line ends restored), ``stderr`` = the simulator's own
  diagnostics, ``isolation["phase"] == "run"``.
* always: ``isolation["build"]`` (tool, returncode, duration_s, flash_bytes, ram_bytes,
  flash_max, ram_max, core_cache, log tail) and, when it ran, ``isolation["run"]`` (kind,
  duration_s = simulated-run wall time, timeout_s, timed_out, returncode, uart_baud, ...).
  The sandbox's own isolation report of the last phase stays at top level. Oracles re-run
  the same way (other test vectors) through ``OracleContext.run``, which calls this executor.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Protocol

from pytest_autopilot.core.errors import ToolchainMissing
from pytest_autopilot.core.records import ExecResult
from pytest_autopilot.core.util import lay_out
from pytest_autopilot.executors import serial_hil
from pytest_autopilot.executors.simulators import simulator, stable_partial_output
from pytest_autopilot.toolchains.sizes import build_passed

DEFAULT_BAUD = 9600
HIL_TIMEOUT_S = 30.0  # reading a board whose entry has no simulator bound


class FirmwareToolchain(Protocol):
    """What the executor needs of a toolchain (``toolchains.arduino`` / ``toolchains.armgcc``)."""

    name: str
    simulator_kind: str  # the board simulator its firmware runs on
    hil_supported: bool
    sandbox: Any
    board: Any

    def write_code(self, code: str, workdir: Path) -> None: ...

    def build(self, workdir: Path, limits) -> tuple[ExecResult, dict[str, Any]]: ...

    def elf(self, workdir: Path) -> Path | None: ...


def strip_paths(text: str, workdir: Path) -> str:
    """Tool output without the (volatile) work dir: paths become relative to it."""
    for root in {str(workdir), str(Path(workdir).resolve())}:
        text = text.replace(root + "/", "").replace(root, ".")
    return text


def tail(text: str, chars: int = 4000) -> str:
    return text if len(text) <= chars else "[...]" + text[-chars:]


class FirmwareExecutor:
    """Lay out the inputs, write the code, build, then run (simulator / board / none)."""

    def __init__(self, toolchain: FirmwareToolchain, *, run: str = "auto", hil_port: str | None = None,
                 serial_baud: int = DEFAULT_BAUD, build_timeout_s: float = 300.0):
        self.toolchain = toolchain
        self.sandbox = toolchain.sandbox
        self.board = toolchain.board
        self.hil_port = hil_port
        self.serial_baud = int(serial_baud)
        self.build_timeout_s = build_timeout_s
        self.run_mode = self._resolve_run(run)
        if self.run_mode == "hil" and not toolchain.hil_supported:
            raise ToolchainMissing(f"hardware-in-the-loop is not supported for {toolchain.name} boards yet")
        self.simulator = self._simulator() if self.run_mode == "sim" else None

    def _resolve_run(self, run: str) -> str:
        if run == "auto":
            return "sim" if self.board.simulator is not None else "none"
        if run not in ("sim", "hil", "none"):
            raise ValueError(f"run must be auto, sim, hil or none, not {run!r}")
        if run == "sim" and self.board.simulator is None:
            raise ToolchainMissing(f"board {self.board.name} has no simulator entry")
        return run

    def _simulator(self):
        kind, runs_on = self.board.simulator.kind, self.toolchain.simulator_kind
        if kind != runs_on:
            raise ToolchainMissing(f"the {self.toolchain.name} executor simulates with {runs_on}, not {kind}")
        return simulator(kind)

    def build_limits(self, limits):
        """The case's limits, widened to what a compiler needs (time, memory, processes, log size)."""
        from pytest_autopilot.executors.sandbox import Limits

        base = limits or Limits()
        return base.replace(timeout_s=max(self.build_timeout_s, 1.0), cpu_s=max(base.cpu_s, int(self.build_timeout_s)),
                            memory_mb=max(base.memory_mb, 4096), processes=max(base.processes, 64),
                            file_size_mb=max(base.file_size_mb, 256), output_bytes=max(base.output_bytes, 256_000))

    def run_limits(self, limits):
        """The case's limits, with the time bounded by the board's simulator entry."""
        from pytest_autopilot.executors.sandbox import Limits

        base = limits or Limits()
        sim = self.board.simulator
        timeout = min(base.timeout_s, sim.timeout_s) if sim is not None else base.timeout_s
        return base.replace(timeout_s=timeout, cpu_s=max(base.cpu_s, int(timeout) + 5),
                            memory_mb=max(base.memory_mb, 2048), processes=max(base.processes, 16))

    def execute(self, code: str, workdir: Path, files, limits) -> ExecResult:
        workdir = Path(workdir)
        lay_out(workdir, files)
        self.toolchain.write_code(code, workdir)
        started = time.monotonic()
        build, build_info = self.toolchain.build(workdir, self.build_limits(limits))
        build_info = {**build_info, "log": tail(strip_paths(build.stdout + "\n" + build.stderr, workdir)),
                      "returncode": build.returncode, "duration_s": build.duration_s,
                      "timed_out": build.timed_out, "limit_hit": build.limit_hit}
        isolation: dict[str, Any] = {**build.isolation, "build": build_info}
        stdout, stderr = strip_paths(build.stdout, workdir), strip_paths(build.stderr, workdir)
        if not build_passed(build):
            isolation.update(phase="build", timeout_s=self.build_timeout_s)
            return ExecResult(returncode=1 if build.returncode == 0 else build.returncode, stdout=stdout, stderr=stderr,
                              duration_s=round(time.monotonic() - started, 3), timed_out=build.timed_out,
                              limit_hit=build.limit_hit, output_truncated=build.output_truncated, isolation=isolation)
        if self.run_mode == "none":
            isolation["phase"] = "build"
            return ExecResult(returncode=0, stdout=stdout, stderr=stderr,
                              duration_s=round(time.monotonic() - started, 3), isolation=isolation)
        run, run_info = self._hil(workdir) if self.run_mode == "hil" else self._simulate(workdir, limits)
        run_info = {**run_info, "returncode": run.returncode, "duration_s": run.duration_s,
                    "timed_out": run.timed_out, "limit_hit": run.limit_hit}
        if run.timed_out:
            run_info["output_bytes_at_kill"] = len(run.stdout)
            run.stdout = stable_partial_output(run.stdout)
        isolation.update(run.isolation)
        isolation.update({"build": build_info, "run": run_info, "phase": "run", "timeout_s": run_info.get("timeout_s")})
        return ExecResult(returncode=run.returncode, stdout=run.stdout, stderr=run.stderr,
                          duration_s=round(time.monotonic() - started, 3), timed_out=run.timed_out,
                          signal=None, limit_hit=run.limit_hit, output_truncated=run.output_truncated,
                          isolation=isolation)

    def _simulate(self, workdir: Path, limits) -> tuple[ExecResult, dict[str, Any]]:
        elf = self.toolchain.elf(workdir)
        if elf is None:
            return ExecResult(1, "", "the build produced no .elf file", 0.0), {"kind": self.board.simulator.kind}
        return self.simulator.run(self.sandbox, self.board.simulator, elf, workdir, self.run_limits(limits))

    def _hil(self, workdir: Path) -> tuple[ExecResult, dict[str, Any]]:
        port = self.hil_port or serial_hil.find_serial_port(self.board)
        if port is None:
            raise ToolchainMissing(serial_hil.hil_skip_reason(self.board))
        upload = serial_hil.upload(self.toolchain, workdir, port)
        log = tail(strip_paths(upload.stdout + upload.stderr, workdir), 2000)
        info: dict[str, Any] = {"kind": "hil", "port": port, "baud": self.serial_baud,
                                "upload": {"returncode": upload.returncode, "duration_s": upload.duration_s, "log": log}}
        if upload.returncode != 0 or upload.timed_out:
            return ExecResult(upload.returncode or 1, "", "upload failed:\n" + log, upload.duration_s,
                              upload.timed_out), info
        sim = self.board.simulator
        info["timeout_s"] = timeout = sim.timeout_s if sim is not None else HIL_TIMEOUT_S
        return serial_hil.read_serial(port, self.serial_baud, timeout), info


# --------------------------------------------------------------------------- factories


def _executor(ctx, make_toolchain) -> FirmwareExecutor:
    case = ctx.case
    if case.board is None:
        raise ToolchainMissing(f"executor {case.executor!r} needs a board: add `board:` to the case")
    context = case.spec.context if isinstance(case.spec.context, dict) else {}
    return FirmwareExecutor(make_toolchain(ctx.sandbox, case.board), run="hil" if ctx.options.get("hil") else "auto",
                            hil_port=serial_hil.explicit_port(),
                            serial_baud=int(context.get("baud_rate", DEFAULT_BAUD)))


def arduino_executor(ctx) -> FirmwareExecutor:
    from pytest_autopilot.toolchains.arduino import ArduinoToolchain

    return _executor(ctx, ArduinoToolchain)


def arm_executor(ctx) -> FirmwareExecutor:
    from pytest_autopilot.toolchains.armgcc import ArmGccToolchain

    return _executor(ctx, ArmGccToolchain)
