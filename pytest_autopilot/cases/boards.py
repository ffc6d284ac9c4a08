"""The board/target registry: one YAML file per board in ``hardware/`` (over the packaged boards,
``pytest_autopilot/data/hardware/``), validated here.

Cases name a board (``board: arduino_uno``); oracles read its budgets from the entry.
Users add a board with one file; the file stem is the board's name.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pytest_autopilot.cases import defaults
from pytest_autopilot.core.util import validation_line

CAPABILITIES = ("arduino", "tflm", "python", "edgetpu", "serial", "ssh", "simulator")


class HardwareError(Exception):
    """A board file is invalid or missing (one-line message naming file and field)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Memory(_Strict):
    flash_kb: float = Field(gt=0, description="total program memory")
    ram_kb: float = Field(gt=0, description="total data memory")
    reserved_flash_kb: float = Field(default=0, ge=0, description="kept for the application around the model")
    reserved_ram_kb: float = Field(default=0, ge=0)


class Build(_Strict):
    fqbn: str | None = None  # Arduino fully qualified board name
    cores: list[str] = Field(default_factory=list)  # arduino-cli cores, e.g. arduino:mbed_nano
    libraries: list[str] = Field(default_factory=list)
    cflags: list[str] = Field(default_factory=list)  # bare-metal builds (arm-none-eabi-gcc)


class Simulator(_Strict):
    kind: Literal["simavr", "qemu"]
    machine: str  # simavr -m MCU / qemu -M MACHINE
    frequency_hz: int | None = None
    timeout_s: float = Field(default=10, gt=0)


class SSH(_Strict):
    host: str
    port: int = Field(default=22, gt=0, lt=65536)
    user: str | None = None
    key_env: str | None = None  # env var naming the private-key file; else the SSH agent
    python: str = "python3"
    workdir: str = "/tmp"


class Software(_Strict):
    """The software a board's (or a case's) programs run against: built once as a venv
    (``executors.environments``), e.g. a Pi's numpy 1.x and tflite_runtime."""

    python: str = Field(pattern=r"^3\.\d+$", description="interpreter version, e.g. 3.11")
    packages: list[str] = Field(min_length=1, description="pip requirement specifiers, with pins")
    display: bool = Field(default=False, description="a virtual X display per run (xvfb-run): cv2.imshow works")
    sources: dict[str, str] = Field(default_factory=dict, description="where each pin comes from, by its line in "
                                    "packages (the reports' provenance shows them)")

    @model_validator(mode="after")
    def _sources_name_packages(self) -> "Software":
        unknown = [pin for pin in self.sources if pin not in self.packages]
        if unknown:
            raise ValueError(f"sources names {unknown[0]!r}, which is not a line of packages")
        return self


class Access(_Strict):
    serial_port_glob: str | None = None  # e.g. /dev/serial/by-id/*Arduino*
    ssh: SSH | None = None


class Board(_Strict):
    name: str = ""  # filled from the file stem
    display_name: str
    architecture: str  # avr, arm-cortex-m4, aarch64, ...
    mcu: str | None = None
    memory: Memory
    build: Build = Build()
    simulator: Simulator | None = None
    access: Access = Access()
    capabilities: list[Literal[CAPABILITIES]] = Field(default_factory=list)  # type: ignore[valid-type]
    software: Software | None = None  # what local runs for this board use (None: the harness's venv)

    @property
    def model_flash_budget(self) -> int:
        """Bytes of flash a model may take, the application's reserve left out."""
        return int((self.memory.flash_kb - self.memory.reserved_flash_kb) * 1024)

    @property
    def model_ram_budget(self) -> int:
        """Bytes of RAM a model's tensor arena may take."""
        return int((self.memory.ram_kb - self.memory.reserved_ram_kb) * 1024)


def load_board_file(path: Path) -> Board:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError:
        raise HardwareError(f"{path}: board file not found") from None
    except yaml.YAMLError as exc:
        raise HardwareError(f"{path}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, dict):
        raise HardwareError(f"{path}: expected a mapping of board fields (display_name, architecture, memory, ...)")
    try:
        return Board.model_validate({**raw, "name": path.stem})
    except ValidationError as exc:
        raise HardwareError(validation_line(exc, str(path))) from None


@lru_cache(maxsize=None)
def load_board(hardware_dir: Path, name: str) -> Board:
    files = defaults.board_files(hardware_dir)
    if name not in files:
        known = ", ".join(sorted(files)) or "none"
        raise HardwareError(f"no board {name!r} in {hardware_dir} or the packaged boards (known: {known}); "
                            f"add {name}.yaml to register it")
    return load_board_file(files[name])
