"""Running built firmware on the board's simulator (``simulator.kind`` of its board entry):

``simavr``  an AVR ELF; the firmware's UART 0 output is recovered from simavr's verbose
            trace on stderr (:func:`simavr_uart_text`), its own messages kept apart
            (:func:`simavr_diagnostics`), the baud rate the firmware configured read back.
``qemu``    a Cortex-M semihosting ELF on ``qemu-system-arm``: what it prints is stdout,
            its exit status the program's.

Both run in the sandbox, bounded by the board's ``simulator.timeout_s``. A run killed at
its time limit keeps only its first complete output lines (:func:`stable_partial_output`):
how much a never-ending firmware prints before the kill depends on the machine, and repair
prompts must not (cassettes match on them).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pytest_autopilot.core.errors import ToolchainMissing
from pytest_autopilot.core.records import ExecResult
from pytest_autopilot.core.util import strip_ansi
from pytest_autopilot.toolchains.arduino import SIMAVR_HINT
from pytest_autopilot.toolchains.armgcc import QEMU_HINT

TIMEOUT_OUTPUT_LINES = 10


def stable_partial_output(text: str, lines: int = TIMEOUT_OUTPUT_LINES) -> str:
    """Output of a run killed at its time limit, cut to its first ``lines`` complete lines:
    how much a never-ending firmware prints before the kill depends on the machine's speed,
    and repair prompts (matched by replayed cassettes) must not."""
    kept = text.splitlines(keepends=True)
    complete = [l for l in kept[:lines] if l.endswith("\n")]
    if len(kept) > len(complete) or (kept and not kept[-1].endswith("\n")):
        return "".join(complete) + f"[output after the first {len(complete)} complete lines not shown: the run was killed at its time limit]\n"
    return text


# --------------------------------------------------------------------------- simavr

_SIMAVR_UART = re.compile(r"\x1b\[32m(.*?)\n\x1b\[0m", re.S)
_SIMAVR_BAUD = re.compile(r"UART: (\d+) configured to [0-9a-fA-F]+ = ([0-9.]+) bps")
_SIMAVR_LINE_MAX = 256  # simavr prints a UART line at "\n" or after this many bytes
_SIMAVR_TRACE = re.compile(r"^(Loaded \d+|TIMER: |ADC: |UART: |SPI: |TWI: |EEPROM: |WATCHDOG: |IOPORT: |"
                           r"avr_interrupt_reset|simavr: sleeping with interrupts off)")


def simavr_uart_text(stderr: str) -> str:
    """The bytes the firmware sent over UART 0, as simavr shows them on stderr: each line
    wrapped in green ANSI codes, every byte < 0x20 shown as ``.``. The line's final ``.`` is
    the ``\\n`` byte; a ``.`` right before it is taken for the ``\\r`` of ``println``. Other
    control bytes cannot be told from a printed ``.`` (expected formats use printable text)."""
    out = []
    for segment in _SIMAVR_UART.findall(stderr):
        if len(segment) >= _SIMAVR_LINE_MAX:  # a long line cut by simavr, no newline byte yet
            out.append(segment)
            continue
        body = segment[:-1] if segment.endswith(".") else segment
        end = "\n"
        if body.endswith("."):
            body, end = body[:-1], "\r\n"
        out.append(body + end)
    return "".join(out)


def simavr_diagnostics(stdout: str, stderr: str) -> str:
    """What simavr said besides UART output and its routine trace lines (crashes, errors)."""
    rest = strip_ansi(_SIMAVR_UART.sub("", stderr))
    lines = [l for l in (stdout + "\n" + rest).splitlines() if l.strip() and not _SIMAVR_TRACE.match(l)]
    return "\n".join(lines)


def simavr_baud(log: str) -> float | None:
    found = _SIMAVR_BAUD.findall(log)
    return float(found[-1][1]) if found else None


def run_simavr(sandbox, sim, elf: Path, workdir: Path, limits) -> tuple[ExecResult, dict[str, Any]]:
    argv = ["simavr", "-v", "-v", "-v", "-m", sim.machine]
    if sim.frequency_hz:
        argv += ["-f", str(sim.frequency_hz)]
    result = sandbox.run(argv + [str(elf)], workdir, limits=limits)
    uart = simavr_uart_text(result.stderr)
    info = {"kind": "simavr", "machine": sim.machine, "frequency_hz": sim.frequency_hz,
            "timeout_s": limits.timeout_s, "uart_baud": simavr_baud(result.stdout), "output_bytes": len(uart)}
    result.stdout, result.stderr = uart, simavr_diagnostics(result.stdout, result.stderr)
    return result, info


# --------------------------------------------------------------------------- QEMU


def run_qemu(sandbox, sim, elf: Path, workdir: Path, limits) -> tuple[ExecResult, dict[str, Any]]:
    argv = ["qemu-system-arm", "-M", sim.machine, "-accel", "tcg,tb-size=64", "-nographic", "-monitor", "none",
            "-semihosting-config", "enable=on,target=native", "-kernel", str(elf.relative_to(workdir))]
    result = sandbox.run(argv, workdir, limits=limits)
    info = {"kind": "qemu", "machine": sim.machine, "timeout_s": limits.timeout_s, "output_bytes": len(result.stdout)}
    return result, info


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Simulator:
    binary: str
    hint: str
    run: Callable[..., tuple[ExecResult, dict[str, Any]]]  # (sandbox, sim, elf, workdir, limits)


SIMULATORS = {"simavr": Simulator("simavr", SIMAVR_HINT, run_simavr),
              "qemu": Simulator("qemu-system-arm", QEMU_HINT, run_qemu)}


def simulator(kind: str) -> Simulator:
    """The simulator of a board entry's ``simulator.kind``; ToolchainMissing when not installed."""
    found = SIMULATORS[kind]
    if shutil.which(found.binary) is None:
        raise ToolchainMissing(f"{found.binary} is not installed; install it with: {found.hint}")
    return found
