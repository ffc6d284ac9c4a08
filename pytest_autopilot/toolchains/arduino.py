"""Arduino builds of the ArdSG stage (executor ``arduino``): ``sketch/sketch.ino`` is built
with ``arduino-cli`` when it is on PATH (FQBN, cores and libraries from the board entry),
else with Debian's ``arduino-builder`` and its AVR core. Running the firmware (simavr, a real
board) is the executor's part: :mod:`pytest_autopilot.executors.firmware`.

The Arduino core is compiled once per (tool, board, flags, core version) and cached in
``AUTOPILOT_FIRMWARE_CACHE`` (default ``~/.cache/pytest-autopilot/firmware-core``): the first
build warms it with a harness-written sketch under a file lock (safe with pytest-xdist), and
each attempt builds with a private copy of it in its work dir, so generated code can never
write to the shared cache. With arduino-builder, header-only harness libraries (the simulated
sensor, emlearn) go on the include path instead of through its library detection, which
would cost one preprocessor pass per library (the compiled code is the same).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable

from pytest_autopilot.core.errors import ToolchainMissing
from pytest_autopilot.core.records import ExecResult
from pytest_autopilot.core.util import LOCK_TIMEOUT_S, cache_dir, file_lock
from pytest_autopilot.toolchains import Requirement
from pytest_autopilot.toolchains.sizes import SIZE_KEYS, build_passed, cli_sizes, elf_sizes, required

AVR_HINT = "apt-get install -y --no-install-recommends arduino-builder arduino-core-avr gcc-avr avr-libc"
SIMAVR_HINT = "apt-get install -y --no-install-recommends simavr"
NANO33_CORE = "arduino:mbed_nano"
NANO33_LIBRARIES = ("Chirale_TensorFLowLite",)
ARDUINO_CLI_HINT = ("arduino-cli is not packaged for Debian: install it from "
                    "https://arduino.github.io/arduino-cli/latest/installation/ , then run "
                    f"`arduino-cli core install {NANO33_CORE}` and "
                    f"`arduino-cli lib install {' '.join(NANO33_LIBRARIES)}`")

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
# The C locale: compiler messages (the repair prompts, matched by cassettes) read the same
# on every machine -- English, ASCII quotes.
BUILD_ENV = {"LC_ALL": "C"}


def _which(name: str) -> bool:
    return shutil.which(name) is not None


def have_arduino_builder_avr() -> bool:
    return _which("arduino-builder") and _which("avr-gcc") and (DEBIAN_AVR / "platform.txt").is_file()


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


# What a case may list under requires.toolchains.
ARDUINO_AVR = Requirement(lambda: have_arduino_builder_avr() or arduino_cli_ready(("arduino:avr",))[0],
                          AVR_HINT + "  (or arduino-cli with `arduino-cli core install arduino:avr`)")
SIMAVR = Requirement(lambda: _which("simavr"), SIMAVR_HINT)
ARDUINO_CLI_NANO33BLE = Requirement(_nano33_ready, ARDUINO_CLI_HINT)


def boards_txt(board_id: str) -> dict[str, str]:
    """The properties of one board of Debian's AVR core (``uno.upload.speed=...`` -> ``upload.speed``)."""
    props = {}
    path = DEBIAN_AVR / "boards.txt"
    if path.is_file():
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith(board_id + ".") and "=" in line:
                key, _, value = line[len(board_id) + 1:].partition("=")
                props[key.strip()] = value.strip()
    return props


def cli_report(result: ExecResult) -> tuple[ExecResult, dict[str, Any] | None]:
    """Unpack ``arduino-cli compile --format json``: the compiler's own output goes back to
    stdout/stderr (what the repair prompt shows), the document is returned for its sizes.
    Output that is not the JSON document (an old arduino-cli) stays as it is."""
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        return result, None
    if not isinstance(report, dict):
        return result, None
    stderr = (report.get("compiler_err") or "") + (f"{report['error']}\n" if report.get("error") else "")
    return dataclasses.replace(result, stdout=report.get("compiler_out") or "", stderr=stderr + result.stderr), report


# --------------------------------------------------------------------------- core cache


class CoreCache:
    """The shared cache of compiled Arduino cores: one directory per key, published
    atomically (rename) after a warm-up build of a harness sketch, under a file lock."""

    def __init__(self, root: Path | None = None, lock_timeout_s: float = LOCK_TIMEOUT_S):
        self.root = Path(root) if root is not None else cache_dir("firmware-core", "AUTOPILOT_FIRMWARE_CACHE")
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
        with file_lock(self.root / f"{key}.lock", self.lock_timeout_s):
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

    def checkout(self, key: str, dest: Path) -> None:
        """A private copy of the cached core for one build (mtimes kept: the tools compare them)."""
        shutil.copytree(self.path(key), dest, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("READY", "KEY.json"))


# --------------------------------------------------------------------------- the build


class ArduinoToolchain:
    """Arduino sketch -> arduino-cli / arduino-builder -> ``build/sketch.ino.elf`` (and .hex)."""

    name = "arduino"
    simulator_kind = "simavr"  # the AVR boards' ELF; other Arduino boards have no simulator entry
    hil_supported = True

    def __init__(self, sandbox, board, *, backend: str | None = None, cache: CoreCache | bool | None = None):
        if not board.build.fqbn:
            raise ToolchainMissing(f"board {board.name} has no build.fqbn")
        self.backend = backend or ("arduino-cli" if _which("arduino-cli") else "arduino-builder")
        if self.backend == "arduino-builder":
            if not board.build.fqbn.startswith("arduino:avr:"):
                raise ToolchainMissing(f"board {board.name} ({board.build.fqbn}) needs arduino-cli; "
                                       f"Debian's arduino-builder only has the AVR core. {ARDUINO_CLI_HINT}")
            if not have_arduino_builder_avr():
                raise ToolchainMissing(f"arduino-builder with the AVR core is not installed; install it with: {AVR_HINT}")
        self.sandbox = sandbox
        self.board = board
        self.cache = None if cache is False else (cache if isinstance(cache, CoreCache) else CoreCache())

    def write_code(self, code: str, workdir: Path) -> None:
        (workdir / SKETCH_DIR).mkdir(exist_ok=True)
        (workdir / SKETCH_FILE).write_text(code, encoding="utf-8")
        (workdir / BUILD_DIR).mkdir(exist_ok=True)

    def elf(self, workdir: Path) -> Path | None:
        found = sorted((workdir / BUILD_DIR).glob("*.elf"))
        return found[0] if found else None

    def build(self, workdir: Path, limits) -> tuple[ExecResult, dict[str, Any]]:
        core, state = self.prepare_core(workdir, limits)
        result, report = self._compile(workdir, SKETCH_DIR, core, limits)
        info: dict[str, Any] = {"tool": self.backend, "fqbn": self.board.build.fqbn, "core_cache": state,
                                **dict.fromkeys(SIZE_KEYS)}
        if build_passed(result):
            info.update(self._sizes(workdir, report))
        return result, info

    def _sizes(self, workdir: Path, report: dict[str, Any] | None) -> dict[str, int | None]:
        if self.backend == "arduino-cli":
            return required(cli_sizes(report), "arduino-cli's JSON report lists no text and data sections")
        sizes = required(elf_sizes(self.elf(workdir)), f"no readable .elf in {BUILD_DIR}/")
        props = boards_txt(self.board.build.fqbn.split(":")[2])  # the limits "Sketch uses ..." compares with
        limit = {key: int(props[prop]) if props.get(prop, "").isdigit() else None
                 for key, prop in (("flash_max", "upload.maximum_size"), ("ram_max", "upload.maximum_data_size"))}
        return {**sizes, **limit}

    # ---- the command lines
    def _library_dirs(self, workdir: Path) -> list[Path]:
        root = workdir / LIBRARIES_DIR
        return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []

    @staticmethod
    def _header_only(lib: Path) -> bool:
        return not any(p.suffix in (".c", ".cpp", ".cc", ".S", ".a") for p in lib.rglob("*") if p.is_file())

    def _builder_argv(self, workdir: Path, sketch: str, core: Path | None) -> list[str]:
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
        if core is not None:
            argv += ["-build-cache", str(core)]
        if any(not self._header_only(lib) for lib in libs):
            argv += ["-libraries", str(workdir / LIBRARIES_DIR)]
        return argv + [str(workdir / sketch)]

    def _cli_argv(self, workdir: Path, sketch_dir: str, core: Path | None) -> list[str]:
        argv = ["arduino-cli", "compile", "--fqbn", self.board.build.fqbn, "--build-path", str(workdir / BUILD_DIR),
                "--warnings", "default", "--format", "json"]
        if core is not None:
            argv += ["--build-cache-path", str(core)]
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

    def _compile(self, workdir: Path, sketch_dir: str, core: Path | None, limits) -> tuple[ExecResult, dict | None]:
        """One build; with arduino-cli, also its JSON report (None otherwise)."""
        if self.backend == "arduino-cli":
            argv = self._cli_argv(workdir, sketch_dir, core)
            return cli_report(self.sandbox.run(argv, workdir, limits=limits, env_extra={**BUILD_ENV, **self._cli_env()}))
        argv = self._builder_argv(workdir, f"{sketch_dir}/{sketch_dir}.ino", core)
        return self.sandbox.run(argv, workdir, limits=limits, env_extra=BUILD_ENV), None

    # ---- the core cache
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
            core = workdir / CORE_CACHE_DIR
            core.mkdir()
            result, _ = self._compile(workdir, "warmup", core, limits)
            if not build_passed(result):
                return False
            shutil.copytree(core, staging, dirs_exist_ok=True)
            return True
        finally:
            self.sandbox.cleanup(workdir)

    def prepare_core(self, workdir: Path, limits) -> tuple[Path | None, str]:
        """The core cache directory for this build (a private copy) and how it was had."""
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
