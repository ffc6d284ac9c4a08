"""The bare-metal ARM build of the ArdSG stage (executor ``arm-none-eabi``): the generated
``main.c`` compiled with the harness's C files, linker script and headers (from the case's
workspace) by ``arm-none-eabi-gcc`` against newlib's semihosting library (``rdimon``), so the
firmware can print and exit under QEMU (:mod:`pytest_autopilot.executors.simulators`)."""

from __future__ import annotations

import functools
import glob
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

from pytest_autopilot.core.errors import ToolchainMissing
from pytest_autopilot.core.records import ExecResult
from pytest_autopilot.toolchains import Requirement
from pytest_autopilot.toolchains.sizes import SIZE_KEYS, build_passed, elf_sizes, required

ARM_HINT = "apt-get install -y --no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi"
QEMU_HINT = "apt-get install -y --no-install-recommends qemu-system-arm"
MAIN_C = "main.c"
ELF = "app.elf"


def have_arm_none_eabi() -> bool:
    """arm-none-eabi-gcc with newlib's semihosting specs (Debian ships them in a separate package)."""
    if shutil.which("arm-none-eabi-gcc") is None:
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


# What a case may list under requires.toolchains.
ARM_NONE_EABI = Requirement(have_arm_none_eabi, ARM_HINT)
QEMU_ARM = Requirement(lambda: shutil.which("qemu-system-arm") is not None, QEMU_HINT)


class ArmGccToolchain:
    """``main.c`` + the harness's C files and linker script -> ``app.elf`` for QEMU."""

    name = "arm-none-eabi"
    simulator_kind = "qemu"  # a semihosting ELF for a Cortex-M machine
    hil_supported = False
    # gcc hands ld its objects under random temp names (.tmp/ccL9B7Ua.o): one name makes the
    # linker's messages, and so the repair prompts and their cassettes, the same on every build.
    temp_object = re.compile(r"\bcc[A-Za-z0-9]{6}\.o\b")
    base_cflags = ("-O2", "-g", "-ffunction-sections", "-fdata-sections")

    def __init__(self, sandbox, board):
        if not have_arm_none_eabi():
            raise ToolchainMissing(f"arm-none-eabi-gcc with newlib is not installed; install it with: {ARM_HINT}")
        self.sandbox = sandbox
        self.board = board

    def write_code(self, code: str, workdir: Path) -> None:
        (workdir / MAIN_C).write_text(code, encoding="utf-8")

    def elf(self, workdir: Path) -> Path | None:
        path = workdir / ELF
        return path if path.is_file() else None

    def build(self, workdir: Path, limits) -> tuple[ExecResult, dict[str, Any]]:
        sources = sorted(p.name for p in workdir.glob("*.c") if p.name != MAIN_C) + [MAIN_C]
        scripts = sorted(p.name for p in workdir.glob("*.ld"))
        argv = ["arm-none-eabi-gcc", *self.board.build.cflags, *self.base_cflags, "-I.", "-Iinclude"]
        if len(scripts) == 1:
            argv += ["-T", scripts[0]]
        argv += ["-Wl,--gc-sections", *sources, "-lm", "-o", ELF]
        # The C locale: compiler messages (the repair prompts) read the same on every machine.
        result = self.sandbox.run(argv, workdir, limits=limits, env_extra={"LC_ALL": "C"})
        result = replace(result, stdout=self.temp_object.sub("cc-temp.o", result.stdout),
                         stderr=self.temp_object.sub("cc-temp.o", result.stderr))
        info: dict[str, Any] = {"tool": "arm-none-eabi-gcc", "argv": argv, "core_cache": "n/a",
                                **dict.fromkeys(SIZE_KEYS),
                                "flash_max": int(self.board.memory.flash_kb * 1024),
                                "ram_max": int(self.board.memory.ram_kb * 1024)}
        if build_passed(result):
            info.update(required(elf_sizes(self.elf(workdir)), f"no readable {ELF} in the work dir"))
        return result, info
