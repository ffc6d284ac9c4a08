"""Firmware toolchains of the ArdSG stage: build generated sketches / bare-metal C for a
board of ``hardware/``, run the firmware on the board's simulator (or on a real board),
and hand the loop one ``ExecResult``.

Executors (``executor:`` of a case):

``arduino``        :class:`ArduinoToolchain`. Builds ``sketch/sketch.ino`` with ``arduino-cli``
                   when it is on PATH (FQBN, cores and libraries from the board entry), else
                   with Debian's ``arduino-builder`` and its AVR core. Then, by the board:
                   simavr when the board has a ``simulator: {kind: simavr}`` entry; a real
                   board over a serial port in hardware-in-the-loop mode (``hil=True``);
                   otherwise the build is the whole execution (``run: none``).
``arm-none-eabi``  :class:`BareMetalArmToolchain`. Compiles ``main.c`` with the harness's
                   C files, linker script and headers (from the case's workspace) with
                   ``arm-none-eabi-gcc`` + newlib semihosting, runs it on ``qemu-system-arm``.

Every command runs through :class:`~pytest_autopilot.executors.sandbox.Sandbox` (compilers and
simulators get generated input). What the loop gets:

* build failed: ``returncode`` of the build (non-zero), ``stdout``/``stderr`` = compiler
  output with the work dir stripped from paths (``sketch/sketch.ino:12:3: error: ...``),
  ``isolation["phase"] == "build"``.
* build passed: ``returncode``/``timed_out`` of the run, ``stdout`` = the firmware's output
  (UART or semihosting text, line ends restored), ``stderr`` = the simulator's own
  diagnostics, ``isolation["phase"] == "run"``.
* always: ``isolation["build"]`` (tool, returncode, duration_s, flash_bytes, ram_bytes,
  flash_max, ram_max, core_cache, log tail) and, when it ran, ``isolation["run"]`` (kind,
  duration_s = simulated-run wall time, timeout_s, timed_out, returncode, uart_baud, ...);
  ``isolation["toolchain"]`` says how to rebuild the same way (oracles re-run on other
  test vectors). The sandbox's own isolation report of the last phase stays at top level.

The Arduino core is compiled once per (tool, board, flags, core version) and cached in
``AUTOPILOT_FIRMWARE_CACHE`` (default ``~/.cache/pytest-autopilot/firmware-core``): the first
build warms it with a harness-written sketch under a file lock (safe with pytest-xdist), and
each attempt builds with a private copy of it in its work dir, so generated code can never
write to the shared cache. With arduino-builder, header-only harness libraries (the simulated
sensor, emlearn) go on the include path instead of through its library detection, which
would cost one preprocessor pass per library (the compiled code is the same).

A run killed at its time limit keeps only its first complete output lines
(:func:`stable_partial_output`): how much a never-ending firmware prints before the kill
depends on the machine, and repair prompts must not (cassettes match on them).
"""

from __future__ import annotations

import functools
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pytest_autopilot.core.errors import ToolchainMissing
from pytest_autopilot.core.records import ExecResult
from pytest_autopilot.toolchains import requirement

# --------------------------------------------------------------------------- installation

APT_PACKAGES = ("arduino-builder", "arduino-core-avr", "gcc-avr", "avr-libc", "simavr",
                "gcc-arm-none-eabi", "libnewlib-arm-none-eabi", "qemu-system-arm")
APT_COMMAND = "apt-get install -y --no-install-recommends " + " ".join(APT_PACKAGES)
AVR_HINT = "apt-get install -y --no-install-recommends arduino-builder arduino-core-avr gcc-avr avr-libc"
SIMAVR_HINT = "apt-get install -y --no-install-recommends simavr"
ARM_HINT = "apt-get install -y --no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi"
QEMU_HINT = "apt-get install -y --no-install-recommends qemu-system-arm"
NANO33_CORE = "arduino:mbed_nano"
NANO33_LIBRARIES = ("Chirale_TensorFLowLite",)
ARDUINO_CLI_HINT = ("arduino-cli is not packaged for Debian: install it from "
                    "https://arduino.github.io/arduino-cli/latest/installation/ , then run "
                    f"`arduino-cli core install {NANO33_CORE}` and "
                    f"`arduino-cli lib install {' '.join(NANO33_LIBRARIES)}`")
HIL_HINT = ("connect the board over USB (its serial port must match the board entry's "
            "access.serial_port_glob, or name it with AUTOPILOT_HIL_PORT=/dev/ttyACM0) and install "
            "`pip install pyserial` plus the uploader (arduino-cli, or `apt-get install avrdude` for AVR boards)")

DEBIAN_HARDWARE = Path("/usr/share/arduino/hardware")
DEBIAN_BUILDER_DIR = Path("/usr/share/arduino-builder")
DEBIAN_AVR = DEBIAN_HARDWARE / "arduino" / "avr"
# Debian's AVR core misses DECIMAL_DIG with its avr-libc; without this the core does not build.
DEBIAN_CORE_PREFS = ("compiler.cpp.extra_flags=-DDECIMAL_DIG=__DECIMAL_DIG__",)

SKETCH_DIR = "sketch"
SKETCH_FILE = "sketch/sketch.ino"
BUILD_DIR = "build"
LIBRARIES_DIR = "libraries"
CORE_CACHE_DIR = ".core-cache"
MAIN_C = "main.c"
ELF = "app.elf"

EXECUTORS = ("arduino", "arm-none-eabi")


def _which(name: str) -> bool:
    return shutil.which(name) is not None


def have_arduino_builder_avr() -> bool:
    return _which("arduino-builder") and _which("avr-gcc") and (DEBIAN_AVR / "platform.txt").is_file()


def have_arm_none_eabi() -> bool:
    if not _which("arm-none-eabi-gcc"):
        return False
    return any(Path(p).is_file() for p in glob.glob("/usr/lib/arm-none-eabi/lib/**/rdimon.specs", recursive=True)) \
        or _specs_found("rdimon.specs")


@functools.lru_cache(maxsize=None)
def _specs_found(name: str) -> bool:
    try:
        out = subprocess.run(["arm-none-eabi-gcc", f"-print-file-name={name}"], capture_output=True,
                             text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return False
    return bool(out) and Path(out).is_file()


@functools.lru_cache(maxsize=None)
def arduino_cli_inventory() -> dict[str, Any]:
    """Installed cores and libraries of arduino-cli on PATH ({} when it is absent)."""
    if not _which("arduino-cli"):
        return {}

    def run(*args: str) -> Any:
        out = subprocess.run(["arduino-cli", *args, "--format", "json"], capture_output=True, text=True, timeout=60)
        return json.loads(out.stdout or "null") if out.returncode == 0 else None

    try:
        cores = run("core", "list") or {}
        libs = run("lib", "list") or {}
        config = run("config", "dump") or {}
    except (OSError, subprocess.SubprocessError, json.JSONDecodeError):
        return {"cores": [], "libraries": [], "config": {}}
    core_items = cores.get("platforms", []) if isinstance(cores, dict) else cores
    lib_items = libs.get("installed_libraries", []) if isinstance(libs, dict) else (libs or [])
    return {
        "cores": sorted({str(c.get("id", "")) for c in core_items if isinstance(c, dict)}),
        "libraries": sorted({str((l.get("library") or {}).get("name", "")) for l in lib_items if isinstance(l, dict)}),
        "config": config.get("config", config) if isinstance(config, dict) else {},
    }


def arduino_cli_ready(cores: tuple[str, ...] = (), libraries: tuple[str, ...] = ()) -> tuple[bool, str]:
    inventory = arduino_cli_inventory()
    if not inventory:
        return False, "arduino-cli is not on PATH"
    missing = [c for c in cores if c not in inventory["cores"]] + \
              [l for l in libraries if l.lower() not in {x.lower() for x in inventory["libraries"]}]
    return (not missing), ("missing: " + ", ".join(missing) if missing else "")


def _nano33_ready() -> bool:
    return arduino_cli_ready((NANO33_CORE,), NANO33_LIBRARIES)[0]


def _have_pyserial() -> bool:
    import importlib.util

    return importlib.util.find_spec("serial") is not None


# What a case may list under requires.toolchains.
requirement("arduino-avr", lambda: have_arduino_builder_avr() or arduino_cli_ready(("arduino:avr",))[0],
                               AVR_HINT + "  (or arduino-cli with `arduino-cli core install arduino:avr`)")
requirement("simavr", lambda: _which("simavr"), SIMAVR_HINT)
requirement("arm-none-eabi", have_arm_none_eabi, ARM_HINT)
requirement("qemu-arm", lambda: _which("qemu-system-arm"), QEMU_HINT)
requirement("arduino-cli-nano33ble", _nano33_ready, ARDUINO_CLI_HINT)


# --------------------------------------------------------------------------- helpers


def lay_out(workdir: Path, files: dict[str, Path | bytes]) -> None:
    """Copy inputs into the work dir at their relative paths; directories are copied whole
    (a library folder), later entries override files of earlier ones."""
    root = workdir.resolve()
    for rel, source in files.items():
        dest = (workdir / rel).resolve()
        if not dest.is_relative_to(root):
            raise ValueError(f"workspace path {rel!r} leaves the work dir")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, bytes):
            dest.write_bytes(source)
        elif Path(source).is_dir():
            shutil.copytree(source, dest, dirs_exist_ok=True)
        else:
            shutil.copyfile(source, dest)


def _strip_paths(text: str, workdir: Path) -> str:
    """Compiler output without the (volatile) work dir: paths become relative to it."""
    for root in {str(workdir), str(workdir.resolve())}:
        text = text.replace(root + "/", "").replace(root, ".")
    return text


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


def _tail(text: str, chars: int = 4000) -> str:
    return text if len(text) <= chars else "[...]" + text[-chars:]


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
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
    rest = _ANSI.sub("", _SIMAVR_UART.sub("", stderr))
    lines = [l for l in (stdout + "\n" + rest).splitlines() if l.strip() and not _SIMAVR_TRACE.match(l)]
    return "\n".join(lines)


def simavr_baud(log: str) -> float | None:
    found = _SIMAVR_BAUD.findall(log)
    return float(found[-1][1]) if found else None


_ARDUINO_FLASH = re.compile(r"Sketch uses (\d+) bytes.*?Maximum is (\d+) bytes")
_ARDUINO_RAM = re.compile(r"Global variables use (\d+) bytes.*?Maximum is (\d+) bytes")


def parse_arduino_sizes(log: str) -> dict[str, int | None]:
    flash, ram = _ARDUINO_FLASH.search(log), _ARDUINO_RAM.search(log)
    return {"flash_bytes": int(flash.group(1)) if flash else None, "flash_max": int(flash.group(2)) if flash else None,
            "ram_bytes": int(ram.group(1)) if ram else None, "ram_max": int(ram.group(2)) if ram else None}


def parse_berkeley_size(text: str) -> dict[str, int] | None:
    """``size -B`` output: flash = text + data (the .data load image), RAM = data + bss."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and all(p.isdigit() for p in parts[:3]):
            text_b, data_b, bss_b = (int(p) for p in parts[:3])
            return {"flash_bytes": text_b + data_b, "ram_bytes": data_b + bss_b}
    return None


@dataclass
class Phase:
    """One sandboxed command (build, size, simulation, upload) and what it reported."""

    name: str
    returncode: int | None
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False
    limit_hit: str | None = None
    isolation: dict[str, Any] = field(default_factory=dict)
    output_truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.limit_hit

    @classmethod
    def from_exec(cls, name: str, result: ExecResult) -> "Phase":
        return cls(name, result.returncode, result.stdout, result.stderr, result.duration_s, result.timed_out,
                   result.limit_hit, dict(result.isolation), result.output_truncated)


# --------------------------------------------------------------------------- core cache


def default_cache_dir() -> Path:
    env = os.environ.get("AUTOPILOT_FIRMWARE_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pytest-autopilot" / "firmware-core"


class CoreCache:
    """The shared cache of compiled Arduino cores: one directory per key, published
    atomically (rename) after a warm-up build of a harness sketch, under a file lock."""

    def __init__(self, root: Path | None = None, lock_timeout_s: float = 900.0):
        self.root = Path(root) if root is not None else default_cache_dir()
        self.lock_timeout_s = lock_timeout_s

    @staticmethod
    def key(parts: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]

    def path(self, key: str) -> Path:
        return self.root / key

    def ready(self, key: str) -> bool:
        return (self.path(key) / "READY").is_file()

    def ensure(self, key: str, parts: dict[str, Any], warm: Callable[[Path], bool]) -> str:
        """Make sure the cache for ``key`` exists: ``"hit"`` (it did), ``"warmed"`` (this call
        built it) or ``"unavailable: ..."``. ``warm(dir)`` fills ``dir`` with a core cache and
        says whether the build passed; it runs at most once per key at a time."""
        if self.ready(key):
            return "hit"
        try:
            from filelock import FileLock, Timeout
        except ImportError:
            return "unavailable: pip install filelock (the core cache needs a file lock)"

        self.root.mkdir(parents=True, exist_ok=True)
        try:
            with FileLock(str(self.root / f"{key}.lock"), timeout=self.lock_timeout_s):
                if self.ready(key):
                    return "hit"  # another process warmed it while we waited
                staging = Path(tempfile.mkdtemp(prefix=f"{key}.staging-", dir=self.root))
                try:
                    if not warm(staging) or not any(staging.iterdir()):
                        return "unavailable: the warm-up build of the core failed"
                    (staging / "KEY.json").write_text(json.dumps(parts, indent=1, sort_keys=True))
                    (staging / "READY").write_text("")
                    target = self.path(key)
                    if target.exists():  # a stale, unfinished entry
                        shutil.rmtree(target, ignore_errors=True)
                    os.replace(staging, target)
                    return "warmed"
                finally:
                    if staging.exists():
                        shutil.rmtree(staging, ignore_errors=True)
        except Timeout:
            return f"unavailable: lock {self.root / (key + '.lock')} busy for {self.lock_timeout_s:.0f} s"

    def checkout(self, key: str, dest: Path) -> None:
        """A private copy of the cached core for one build (mtimes kept: the tools compare them)."""
        shutil.copytree(self.path(key), dest, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("READY", "KEY.json"))


# --------------------------------------------------------------------------- toolchains


class FirmwareToolchain:
    """Shared driver: lay out, write the code, build, then run (simulator / board / none)."""

    name = "firmware"
    executor = ""

    def __init__(self, sandbox, board, *, run: str = "auto", hil_port: str | None = None,
                 serial_baud: int = 9600, build_timeout_s: float = 300.0, cache: CoreCache | None | bool = None):
        if board is None:
            raise ToolchainMissing(f"executor {self.executor!r} needs a board: add `board:` to the case")
        self.sandbox = sandbox
        self.board = board
        self.serial_baud = int(serial_baud)
        self.build_timeout_s = build_timeout_s
        self.cache = None if cache is False else (cache if isinstance(cache, CoreCache) else CoreCache())
        self.hil_port = hil_port
        self.run_mode = self._resolve_run(run)

    # ---- what a subclass provides
    def _write_code(self, code: str, workdir: Path) -> None:
        raise NotImplementedError

    def _build(self, workdir: Path, limits) -> tuple[Phase, dict[str, Any]]:
        raise NotImplementedError

    def _simulate(self, workdir: Path, limits) -> tuple[Phase, dict[str, Any]]:
        raise NotImplementedError

    # ---- shared
    def _resolve_run(self, run: str) -> str:
        if run == "auto":
            return "sim" if self.board.simulator is not None else "none"
        if run not in ("sim", "hil", "none"):
            raise ValueError(f"run must be auto, sim, hil or none, not {run!r}")
        if run == "sim" and self.board.simulator is None:
            raise ToolchainMissing(f"board {self.board.name} has no simulator entry")
        return run

    def describe(self) -> dict[str, Any]:
        """How to build and run the same way again (stored in isolation["toolchain"])."""
        return {"executor": self.executor, "board": self.board.name, "run": self.run_mode,
                "hil_port": self.hil_port, "serial_baud": self.serial_baud}

    def build_limits(self, limits):
        from pytest_autopilot.executors.sandbox import Limits

        base = limits or Limits()
        return base.replace(timeout_s=max(self.build_timeout_s, 1.0), cpu_s=max(base.cpu_s, int(self.build_timeout_s)),
                            memory_mb=max(base.memory_mb, 4096), processes=max(base.processes, 64),
                            file_size_mb=max(base.file_size_mb, 256), output_bytes=max(base.output_bytes, 256_000))

    def run_limits(self, limits):
        from pytest_autopilot.executors.sandbox import Limits

        base = limits or Limits()
        sim = self.board.simulator
        timeout = min(base.timeout_s, sim.timeout_s) if sim is not None else base.timeout_s
        return base.replace(timeout_s=timeout, cpu_s=max(base.cpu_s, int(timeout) + 5),
                            memory_mb=max(base.memory_mb, 2048), processes=max(base.processes, 16))

    def execute(self, code: str, workdir: Path, files: dict[str, Path | bytes], limits) -> ExecResult:
        workdir = Path(workdir)
        lay_out(workdir, files)
        self._write_code(code, workdir)
        started = time.monotonic()
        build, build_info = self._build(workdir, limits)
        build_info = {**build_info, "returncode": build.returncode, "duration_s": build.duration_s,
                      "timed_out": build.timed_out, "limit_hit": build.limit_hit}
        isolation: dict[str, Any] = {**build.isolation, "toolchain": self.describe(), "build": build_info}
        if not build.ok:
            isolation.update(phase="build", timeout_s=self.build_timeout_s)
            return ExecResult(returncode=1 if build.returncode == 0 else build.returncode,
                              stdout=_strip_paths(build.stdout, workdir), stderr=_strip_paths(build.stderr, workdir),
                              duration_s=round(time.monotonic() - started, 3), timed_out=build.timed_out,
                              limit_hit=build.limit_hit, output_truncated=build.output_truncated, isolation=isolation)
        if self.run_mode == "none":
            isolation["phase"] = "build"
            return ExecResult(returncode=0, stdout=_strip_paths(build.stdout, workdir),
                              stderr=_strip_paths(build.stderr, workdir),
                              duration_s=round(time.monotonic() - started, 3), isolation=isolation)
        if self.run_mode == "hil":
            run, run_info = self._hil(workdir)
        else:
            run, run_info = self._simulate(workdir, limits)
        run_info = {**run_info, "returncode": run.returncode, "duration_s": run.duration_s,
                    "timed_out": run.timed_out, "limit_hit": run.limit_hit}
        if run.timed_out:
            run_info["output_bytes_at_kill"] = len(run.stdout)
            run.stdout = stable_partial_output(run.stdout)
        isolation.update({k: v for k, v in run.isolation.items()})
        isolation.update({"toolchain": self.describe(), "build": build_info, "run": run_info, "phase": "run",
                          "timeout_s": run_info.get("timeout_s")})
        return ExecResult(returncode=run.returncode, stdout=run.stdout, stderr=run.stderr,
                          duration_s=round(time.monotonic() - started, 3), timed_out=run.timed_out,
                          signal=None, limit_hit=run.limit_hit, output_truncated=run.output_truncated,
                          isolation=isolation)

    # ---- hardware in the loop
    def _hil(self, workdir: Path) -> tuple[Phase, dict[str, Any]]:
        port = self.hil_port or find_serial_port(self.board)
        if port is None:
            raise ToolchainMissing(hil_skip_reason(self.board))
        upload = self._upload(workdir, port)
        info: dict[str, Any] = {"kind": "hil", "port": port, "baud": self.serial_baud,
                                "upload": {"returncode": upload.returncode, "duration_s": upload.duration_s,
                                           "log": _tail(_strip_paths(upload.stdout + upload.stderr, workdir), 2000)}}
        if not upload.ok:
            return Phase("upload", upload.returncode or 1, "", "upload failed:\n" + info["upload"]["log"],
                         upload.duration_s, upload.timed_out), info
        sim = self.board.simulator
        info["timeout_s"] = timeout = sim.timeout_s if sim is not None else 30.0
        return read_serial(port, self.serial_baud, timeout), info

    def _upload(self, workdir: Path, port: str) -> Phase:
        raise ToolchainMissing(f"no uploader for {self.executor} boards")


def find_serial_port(board) -> str | None:
    """The board's serial port: AUTOPILOT_HIL_PORT, else the first match of the board
    entry's access.serial_port_glob."""
    explicit = os.environ.get("AUTOPILOT_HIL_PORT")
    if explicit:
        return explicit if os.path.exists(explicit) else None
    pattern = board.access.serial_port_glob if board is not None else None
    matches = sorted(glob.glob(pattern)) if pattern else []
    return matches[0] if matches else None


def hil_skip_reason(board) -> str:
    pattern = board.access.serial_port_glob if board is not None else None
    where = (f"no serial port matches {pattern}" if pattern else f"board {board.name} has no access.serial_port_glob") \
        if board is not None else "no board"
    explicit = os.environ.get("AUTOPILOT_HIL_PORT")
    if explicit:
        where = f"AUTOPILOT_HIL_PORT={explicit} does not exist"
    return f"no {board.display_name if board is not None else 'board'} attached ({where}); {HIL_HINT}"


def hil_unavailable(case) -> str | None:
    """None when hardware-in-the-loop can run this case (a board is attached and pyserial is
    installed), else the reason to skip it -- for the runner, before any LLM call."""
    if case.executor != "arduino":
        return f"{case.path.name}: hardware-in-the-loop runs arduino cases only (executor {case.executor})"
    if find_serial_port(case.board) is None:
        return hil_skip_reason(case.board)
    if not _have_pyserial():
        return "pyserial is not installed: pip install pyserial"
    return None


def read_serial(port: str, baud: int, timeout_s: float, idle_s: float = 2.0) -> Phase:
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
    return Phase("run", None if timed_out else 0, text, "", round(time.monotonic() - started, 3), timed_out)


class ArduinoToolchain(FirmwareToolchain):
    """Arduino sketch -> arduino-cli / arduino-builder -> simavr, a real board, or nothing."""

    name = "arduino"
    executor = "arduino"

    def __init__(self, sandbox, board, *, backend: str | None = None, **kwargs):
        super().__init__(sandbox, board, **kwargs)
        if not board.build.fqbn:
            raise ToolchainMissing(f"board {board.name} has no build.fqbn")
        self.backend = backend or ("arduino-cli" if _which("arduino-cli") else "arduino-builder")
        if self.backend == "arduino-builder":
            if not board.build.fqbn.startswith("arduino:avr:"):
                raise ToolchainMissing(f"board {board.name} ({board.build.fqbn}) needs arduino-cli; "
                                       f"Debian's arduino-builder only has the AVR core. {ARDUINO_CLI_HINT}")
            if not have_arduino_builder_avr():
                raise ToolchainMissing(f"arduino-builder with the AVR core is not installed; install it with: {AVR_HINT}")
        if self.run_mode == "sim" and self.board.simulator.kind != "simavr":
            raise ToolchainMissing(f"the arduino executor simulates with simavr, not {self.board.simulator.kind}")
        if self.run_mode == "sim" and not _which("simavr"):
            raise ToolchainMissing(f"simavr is not installed; install it with: {SIMAVR_HINT}")

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "backend": self.backend}

    def _write_code(self, code: str, workdir: Path) -> None:
        (workdir / SKETCH_DIR).mkdir(exist_ok=True)
        (workdir / SKETCH_FILE).write_text(code, encoding="utf-8")
        (workdir / BUILD_DIR).mkdir(exist_ok=True)

    # ---- the command lines
    def _library_dirs(self, workdir: Path) -> list[Path]:
        root = workdir / LIBRARIES_DIR
        return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []

    @staticmethod
    def _header_only(lib: Path) -> bool:
        return not any(p.suffix in (".c", ".cpp", ".cc", ".S", ".a") for p in lib.rglob("*") if p.is_file())

    def _builder_argv(self, workdir: Path, sketch: str, cache_dir: Path | None) -> list[str]:
        argv = ["arduino-builder", "-compile", "-logger", "human", "-warnings", "default",
                "-hardware", str(DEBIAN_HARDWARE), "-hardware", str(DEBIAN_BUILDER_DIR), "-tools", str(DEBIAN_BUILDER_DIR),
                "-fqbn", self.board.build.fqbn, "-build-path", str(workdir / BUILD_DIR)]
        # Header-only harness libraries go on the include path: arduino-builder's library
        # detection (one preprocessor pass per missing header) would cost more than the
        # compile itself; the compiled code is the same. Libraries with sources stay libraries.
        libs = self._library_dirs(workdir)
        includes = [lib / "src" if (lib / "src").is_dir() else lib for lib in libs if self._header_only(lib)]
        flags = " ".join(f"-I{d}" for d in includes)
        prefs = [p + (" " + flags if flags and p.startswith("compiler.cpp.extra_flags=") else "") for p in DEBIAN_CORE_PREFS]
        if flags:
            prefs.append(f"compiler.c.extra_flags={flags}")
        argv += [f"-prefs={p}" for p in prefs]
        if cache_dir is not None:
            argv += ["-build-cache", str(cache_dir)]
        if any(not self._header_only(lib) for lib in libs):
            argv += ["-libraries", str(workdir / LIBRARIES_DIR)]
        return argv + [str(workdir / sketch)]

    def _cli_argv(self, workdir: Path, sketch_dir: str, cache_dir: Path | None) -> list[str]:
        argv = ["arduino-cli", "compile", "--fqbn", self.board.build.fqbn, "--build-path", str(workdir / BUILD_DIR),
                "--warnings", "default"]
        if cache_dir is not None:
            argv += ["--build-cache-path", str(cache_dir)]
        for lib in self._library_dirs(workdir):  # --library: these win over installed namesakes
            argv += ["--library", str(lib)]
        return argv + [str(workdir / sketch_dir)]

    def _cli_env(self) -> dict[str, str]:
        config = arduino_cli_inventory().get("config", {})
        dirs = config.get("directories", {}) if isinstance(config, dict) else {}
        env = {}
        for key, name in (("data", "ARDUINO_DIRECTORIES_DATA"), ("user", "ARDUINO_DIRECTORIES_USER"),
                          ("downloads", "ARDUINO_DIRECTORIES_DOWNLOADS")):
            if dirs.get(key):
                env[name] = str(dirs[key])
        env.setdefault("ARDUINO_DIRECTORIES_DATA", str(Path.home() / ".arduino15"))
        env.setdefault("ARDUINO_DIRECTORIES_USER", str(Path.home() / "Arduino"))
        return env

    def _compile(self, workdir: Path, sketch_dir: str, cache_dir: Path | None, limits) -> Phase:
        if self.backend == "arduino-cli":
            argv, env = self._cli_argv(workdir, sketch_dir, cache_dir), self._cli_env()
        else:
            argv, env = self._builder_argv(workdir, f"{sketch_dir}/{sketch_dir}.ino", cache_dir), {}
        return Phase.from_exec("build", self.sandbox.run(argv, workdir, limits=self.build_limits(limits), env_extra=env))

    def cache_parts(self) -> dict[str, Any]:
        parts: dict[str, Any] = {"backend": self.backend, "fqbn": self.board.build.fqbn}
        if self.backend == "arduino-builder":
            platform = DEBIAN_AVR / "platform.txt"
            stat = platform.stat() if platform.exists() else None
            parts.update(prefs=list(DEBIAN_CORE_PREFS), hardware=[str(DEBIAN_HARDWARE), str(DEBIAN_BUILDER_DIR)],
                         platform=[stat.st_size, int(stat.st_mtime)] if stat else None,
                         builder=shutil.which("arduino-builder"))
        else:
            parts.update(cores=arduino_cli_inventory().get("cores", []), cli=shutil.which("arduino-cli"))
        return parts

    def _warm(self, staging: Path, limits) -> bool:
        """Build a harness sketch (no generated code) with ``staging`` as the core cache."""
        workdir = self.sandbox.new_workdir(prefix="core-warmup-")
        try:
            (workdir / "warmup").mkdir()
            (workdir / "warmup" / "warmup.ino").write_text(
                "void setup() { Serial.begin(9600); Serial.println(1.5); }\nvoid loop() {}\n")
            (workdir / BUILD_DIR).mkdir()
            cache = workdir / CORE_CACHE_DIR
            cache.mkdir()
            phase = self._compile(workdir, "warmup", cache, limits)
            if not phase.ok:
                return False
            shutil.copytree(cache, staging, dirs_exist_ok=True)
            return True
        finally:
            self.sandbox.cleanup(workdir)

    def prepare_core(self, workdir: Path, limits) -> tuple[Path | None, str]:
        if self.cache is None:
            return None, "off"
        parts = self.cache_parts()
        key = CoreCache.key(parts)
        state = self.cache.ensure(key, parts, lambda staging: self._warm(staging, limits))
        private = workdir / CORE_CACHE_DIR
        private.mkdir(exist_ok=True)
        if state in ("hit", "warmed"):
            self.cache.checkout(key, private)
        return private, state

    def _build(self, workdir: Path, limits) -> tuple[Phase, dict[str, Any]]:
        cache_dir, state = self.prepare_core(workdir, limits)
        phase = self._compile(workdir, SKETCH_DIR, cache_dir, limits)
        log = phase.stdout + "\n" + phase.stderr
        info = {"tool": self.backend, "fqbn": self.board.build.fqbn, "core_cache": state,
                **parse_arduino_sizes(log), "log": _tail(_strip_paths(log, workdir))}
        if phase.ok and info["flash_bytes"] is None:
            info.update(self._size_tool(workdir, limits))
        return phase, info

    def _elf(self, workdir: Path) -> Path | None:
        found = sorted((workdir / BUILD_DIR).glob("*.elf"))
        return found[0] if found else None

    def _size_tool(self, workdir: Path, limits) -> dict[str, Any]:
        elf = self._elf(workdir)
        tool = "avr-size" if self.board.architecture == "avr" else "arm-none-eabi-size"
        if elf is None or not _which(tool):
            return {}
        res = self.sandbox.run([tool, "-B", str(elf)], workdir, limits=self.build_limits(limits))
        return parse_berkeley_size(res.stdout) or {}

    def _simulate(self, workdir: Path, limits) -> tuple[Phase, dict[str, Any]]:
        sim = self.board.simulator
        elf = self._elf(workdir)
        if elf is None:
            return Phase("run", 1, "", "the build produced no .elf file", 0.0), {"kind": "simavr"}
        argv = ["simavr", "-v", "-v", "-v", "-m", sim.machine]
        if sim.frequency_hz:
            argv += ["-f", str(sim.frequency_hz)]
        run_limits = self.run_limits(limits)
        result = self.sandbox.run(argv + [str(elf)], workdir, limits=run_limits)
        uart = simavr_uart_text(result.stderr)
        info = {"kind": "simavr", "machine": sim.machine, "frequency_hz": sim.frequency_hz,
                "timeout_s": run_limits.timeout_s, "uart_baud": simavr_baud(result.stdout),
                "output_bytes": len(uart)}
        phase = Phase.from_exec("run", result)
        phase.stdout, phase.stderr = uart, simavr_diagnostics(result.stdout, result.stderr)
        return phase, info

    def _upload(self, workdir: Path, port: str) -> Phase:
        """Upload the build to the board (a harness tool fed a firmware image: not sandboxed,
        it needs the device)."""
        if self.backend == "arduino-cli":
            argv = ["arduino-cli", "upload", "-p", port, "--fqbn", self.board.build.fqbn,
                    "--input-dir", str(workdir / BUILD_DIR)]
        else:
            hexes = sorted(p for p in (workdir / BUILD_DIR).glob("*.hex") if "bootloader" not in p.name)
            if not hexes or not _which("avrdude"):
                return Phase("upload", 1, "", "avrdude (apt-get install avrdude) and a .hex build are needed", 0.0)
            board_id = self.board.build.fqbn.split(":")[2]
            props = _boards_txt(board_id)
            argv = ["avrdude", "-p", props.get("build.mcu", self.board.mcu or "atmega328p"),
                    "-c", props.get("upload.protocol", "arduino"), "-P", port,
                    "-b", props.get("upload.speed", "115200"), "-D", "-U", f"flash:w:{hexes[0]}:i"]
        started = time.monotonic()
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=180)
        except subprocess.TimeoutExpired as exc:
            return Phase("upload", None, str(exc.stdout or ""), str(exc.stderr or ""), 180.0, timed_out=True)
        return Phase("upload", out.returncode, out.stdout, out.stderr, round(time.monotonic() - started, 3))


def _boards_txt(board_id: str) -> dict[str, str]:
    props = {}
    path = DEBIAN_AVR / "boards.txt"
    if path.is_file():
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith(board_id + ".") and "=" in line:
                key, _, value = line[len(board_id) + 1:].partition("=")
                props[key.strip()] = value.strip()
    return props


class BareMetalArmToolchain(FirmwareToolchain):
    """``main.c`` + the harness's C files and linker script -> arm-none-eabi-gcc -> QEMU."""

    name = "arm-none-eabi"
    executor = "arm-none-eabi"
    base_cflags = ("-O2", "-g", "-ffunction-sections", "-fdata-sections")

    def __init__(self, sandbox, board, **kwargs):
        super().__init__(sandbox, board, **kwargs)
        if self.run_mode == "hil":
            raise ToolchainMissing("hardware-in-the-loop is not supported for bare-metal boards yet")
        if not have_arm_none_eabi():
            raise ToolchainMissing(f"arm-none-eabi-gcc with newlib is not installed; install it with: {ARM_HINT}")
        if self.run_mode == "sim":
            if self.board.simulator.kind != "qemu":
                raise ToolchainMissing(f"the arm-none-eabi executor simulates with qemu, not {self.board.simulator.kind}")
            if not _which("qemu-system-arm"):
                raise ToolchainMissing(f"qemu-system-arm is not installed; install it with: {QEMU_HINT}")

    def _write_code(self, code: str, workdir: Path) -> None:
        (workdir / MAIN_C).write_text(code, encoding="utf-8")

    def _build(self, workdir: Path, limits) -> tuple[Phase, dict[str, Any]]:
        sources = sorted(p.name for p in workdir.glob("*.c") if p.name != MAIN_C) + [MAIN_C]
        scripts = sorted(p.name for p in workdir.glob("*.ld"))
        argv = ["arm-none-eabi-gcc", *self.board.build.cflags, *self.base_cflags, "-I.", "-Iinclude"]
        if len(scripts) == 1:
            argv += ["-T", scripts[0]]
        argv += ["-Wl,--gc-sections", *sources, "-lm", "-o", ELF]
        started = time.monotonic()
        phase = Phase.from_exec("build", self.sandbox.run(argv, workdir, limits=self.build_limits(limits)))
        info: dict[str, Any] = {"tool": "arm-none-eabi-gcc", "argv": argv, "core_cache": "n/a",
                                "flash_bytes": None, "ram_bytes": None,
                                "flash_max": int(self.board.memory.flash_kb * 1024),
                                "ram_max": int(self.board.memory.ram_kb * 1024)}
        if phase.ok:
            size = self.sandbox.run(["arm-none-eabi-size", "-B", ELF], workdir, limits=self.build_limits(limits))
            info.update(parse_berkeley_size(size.stdout) or {})
        phase.duration_s = round(time.monotonic() - started, 3)
        info["log"] = _tail(_strip_paths(phase.stdout + "\n" + phase.stderr, workdir))
        return phase, info

    def _simulate(self, workdir: Path, limits) -> tuple[Phase, dict[str, Any]]:
        sim = self.board.simulator
        run_limits = self.run_limits(limits)
        argv = ["qemu-system-arm", "-M", sim.machine, "-accel", "tcg,tb-size=64", "-nographic", "-monitor", "none",
                "-semihosting-config", "enable=on,target=native", "-kernel", ELF]
        result = self.sandbox.run(argv, workdir, limits=run_limits)
        info = {"kind": "qemu", "machine": sim.machine, "timeout_s": run_limits.timeout_s,
                "output_bytes": len(result.stdout)}
        return Phase.from_exec("run", result), info


# --------------------------------------------------------------------------- factories


def toolchain_for_case(case, sandbox, *, hil: bool = False, hil_port: str | None = None, cache=None):
    """The toolchain of a case whose ``executor`` is one of :data:`EXECUTORS`."""
    executor = case.executor
    baud = int(case.spec.context.get("baud_rate", 9600)) if isinstance(case.spec.context, dict) else 9600
    kwargs = dict(run="hil" if hil else "auto", hil_port=hil_port, serial_baud=baud)
    if cache is not None:
        kwargs["cache"] = cache
    if executor == "arduino":
        return ArduinoToolchain(sandbox, case.board, **kwargs)
    if executor == "arm-none-eabi":
        return BareMetalArmToolchain(sandbox, case.board, **kwargs)
    raise ValueError(f"executor {executor!r} is not a firmware executor ({', '.join(EXECUTORS)})")


def toolchain_like(description: dict[str, Any], board, sandbox, cache=None):
    """Rebuild a toolchain from ``ExecResult.isolation["toolchain"]`` (oracle re-runs)."""
    kwargs = dict(run=description.get("run", "auto"), hil_port=description.get("hil_port"),
                  serial_baud=description.get("serial_baud", 9600))
    if cache is not None:
        kwargs["cache"] = cache
    if description.get("executor") == "arduino":
        return ArduinoToolchain(sandbox, board, backend=description.get("backend"), **kwargs)
    if description.get("executor") == "arm-none-eabi":
        return BareMetalArmToolchain(sandbox, board, **kwargs)
    raise ValueError(f"cannot rebuild toolchain {description!r}")
