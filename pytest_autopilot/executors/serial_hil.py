"""Hardware in the loop (``--autopilot-hil``): the build is uploaded to a real board attached
over USB and its serial output read with pyserial, judged by the same oracle as a simulated
run. The board's port is ``AUTOPILOT_HIL_PORT`` or the first match of its board entry's
``access.serial_port_glob``; without one the case is skipped before any LLM call
(:func:`hil_unavailable`), with what to connect and install."""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import subprocess
import time
from pathlib import Path

from pytest_autopilot.core.records import ExecResult
from pytest_autopilot.toolchains.arduino import BUILD_DIR, boards_txt

HIL_HINT = ("connect the board over USB (its serial port must match the board entry's "
            "access.serial_port_glob, or name it with AUTOPILOT_HIL_PORT=/dev/ttyACM0) and install "
            "`pip install pyserial` plus the uploader (arduino-cli, or `apt-get install avrdude` for AVR boards)")
UPLOAD_TIMEOUT_S = 180.0
PORT_ENV = "AUTOPILOT_HIL_PORT"  # names the board's serial port, overriding its access.serial_port_glob


def explicit_port() -> str | None:
    """The serial port ``AUTOPILOT_HIL_PORT`` names, or None (the only place it is read)."""
    return os.environ.get(PORT_ENV) or None


def find_serial_port(board) -> str | None:
    """The board's serial port: AUTOPILOT_HIL_PORT, else the first match of the board
    entry's access.serial_port_glob."""
    explicit = explicit_port()
    if explicit:
        return explicit if os.path.exists(explicit) else None
    pattern = board.access.serial_port_glob if board is not None else None
    matches = sorted(glob.glob(pattern)) if pattern else []
    return matches[0] if matches else None


def hil_skip_reason(board) -> str:
    pattern = board.access.serial_port_glob if board is not None else None
    where = (f"no serial port matches {pattern}" if pattern else f"board {board.name} has no access.serial_port_glob") \
        if board is not None else "no board"
    explicit = explicit_port()
    if explicit:
        where = f"{PORT_ENV}={explicit} does not exist"
    return f"no {board.display_name if board is not None else 'board'} attached ({where}); {HIL_HINT}"


def hil_unavailable(case) -> str | None:
    """None when hardware-in-the-loop can run this case (a board is attached and pyserial is
    installed), else the reason to skip it -- for the runner, before any LLM call."""
    if case.executor != "arduino":
        return f"{case.path.name}: hardware-in-the-loop runs arduino cases only (executor {case.executor})"
    if find_serial_port(case.board) is None:
        return hil_skip_reason(case.board)
    if importlib.util.find_spec("serial") is None:
        return "pyserial is not installed: pip install pyserial"
    return None


def upload(toolchain, workdir: Path, port: str) -> ExecResult:
    """Upload an Arduino build to the board: ``arduino-cli upload``, or avrdude with the
    board's settings from Debian's boards.txt. A harness tool fed a firmware image, so not
    sandboxed: it needs the device."""
    fqbn = toolchain.board.build.fqbn
    if toolchain.backend == "arduino-cli":
        argv = ["arduino-cli", "upload", "-p", port, "--fqbn", fqbn, "--input-dir", str(workdir / BUILD_DIR)]
    else:
        hexes = sorted(p for p in (workdir / BUILD_DIR).glob("*.hex") if "bootloader" not in p.name)
        if not hexes or shutil.which("avrdude") is None:
            return ExecResult(1, "", "avrdude (apt-get install avrdude) and a .hex build are needed", 0.0)
        props = boards_txt(fqbn.split(":")[2])
        argv = ["avrdude", "-p", props.get("build.mcu", toolchain.board.mcu or "atmega328p"),
                "-c", props.get("upload.protocol", "arduino"), "-P", port,
                "-b", props.get("upload.speed", "115200"), "-D", "-U", f"flash:w:{hexes[0]}:i"]
    started = time.monotonic()
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=UPLOAD_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        return ExecResult(None, str(exc.stdout or ""), str(exc.stderr or ""), UPLOAD_TIMEOUT_S, timed_out=True)
    return ExecResult(out.returncode, out.stdout, out.stderr, round(time.monotonic() - started, 3))


def read_serial(port: str, baud: int, timeout_s: float, idle_s: float = 2.0) -> ExecResult:
    """Read a board's serial output until it has been quiet for ``idle_s`` after the first
    byte (the firmware finished) or ``timeout_s`` passed (timed out)."""
    import serial  # pyserial

    started = time.monotonic()
    data = bytearray()
    last = None
    timed_out = True
    with serial.Serial(port, baud, timeout=0.1) as link:
        while time.monotonic() - started < timeout_s:
            chunk = link.read(4096)
            now = time.monotonic()
            if chunk:
                data += chunk
                last = now
            elif last is not None and now - last >= idle_s:
                timed_out = False
                break
    text = data.decode("utf-8", errors="replace")
    return ExecResult(None if timed_out else 0, text, "", round(time.monotonic() - started, 3), timed_out)
