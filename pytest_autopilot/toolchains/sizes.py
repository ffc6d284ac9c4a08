"""Firmware sizes: the program flash and static RAM of a build, in the sense of binutils'
berkeley ``size`` (text, data, bss): flash = text + data (the initial values of ``.data``
are stored in flash and copied at start-up), RAM = data + bss.

They are read from machine-readable output only -- never from a tool's English sentence
("Sketch uses N bytes ...", which a translated or reworded tool changes) nor from a
``*-size`` binary that may not be on PATH:

* arduino-cli builds: ``arduino-cli compile --format json`` prints one JSON document whose
  ``builder_result.executable_sections_size`` lists ``{"name", "size", "max_size"}`` entries.
  ``text`` is what the board's platform counts as program storage and ``data`` as dynamic
  memory (its size recipes: the figures of its "Sketch uses" line), ``max_size`` the board's
  limit. arduino-cli leaves out zero fields: a missing ``size`` is 0, a missing ``max_size``
  means the platform states no limit.
* every other build: the ELF file, read with pyelftools, its SHF_ALLOC sections summed as
  ``size -B`` does: executable or read-only -> text, writable with contents -> data,
  writable without (SHT_NOBITS) -> bss.

A build that passed but whose sizes cannot be read is a harness error (a tool changed its
output, the ELF is not where the harness looks), never a failure of the generated code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from pytest_autopilot.core.errors import HarnessError
from pytest_autopilot.core.records import Category, ExecResult

SIZE_KEYS = ("flash_bytes", "flash_max", "ram_bytes", "ram_max")
FLASH_SECTION, RAM_SECTION = "text", "data"  # arduino-cli's names for program storage and dynamic memory


def build_passed(result: ExecResult) -> bool:
    """The build ran to its end: exit code 0, no time or resource limit hit. Only then do
    its sizes mean anything (and must be there)."""
    return result.returncode == 0 and not result.timed_out and not result.limit_hit


def cli_sizes(report: Mapping[str, Any] | None) -> dict[str, int | None] | None:
    """Sizes from arduino-cli's ``compile --format json`` document; None when it has no
    program-storage and dynamic-memory entries."""
    sections = ((report or {}).get("builder_result") or {}).get("executable_sections_size") or []
    by_name = {s.get("name"): s for s in sections if isinstance(s, dict)}
    flash, ram = by_name.get(FLASH_SECTION), by_name.get(RAM_SECTION)
    if flash is None or ram is None:
        return None
    return {"flash_bytes": int(flash.get("size") or 0), "flash_max": int(flash.get("max_size") or 0) or None,
            "ram_bytes": int(ram.get("size") or 0), "ram_max": int(ram.get("max_size") or 0) or None}


def berkeley_sizes(elf: Path) -> dict[str, int] | None:
    """``{"text", "data", "bss"}`` of an ELF file as ``size -B`` counts them; None when the
    file is absent or not a readable ELF."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.constants import SH_FLAGS
    from elftools.elf.elffile import ELFFile

    totals = {"text": 0, "data": 0, "bss": 0}
    try:
        with open(elf, "rb") as stream:
            for section in ELFFile(stream).iter_sections():
                flags = section["sh_flags"]
                if not flags & SH_FLAGS.SHF_ALLOC:
                    continue
                if flags & SH_FLAGS.SHF_EXECINSTR or not flags & SH_FLAGS.SHF_WRITE:
                    totals["text"] += section["sh_size"]
                elif section["sh_type"] != "SHT_NOBITS":
                    totals["data"] += section["sh_size"]
                else:
                    totals["bss"] += section["sh_size"]
    except (OSError, ELFError):
        return None
    return totals


def elf_sizes(elf: Path | None) -> dict[str, int] | None:
    """``flash_bytes`` (text + data) and ``ram_bytes`` (data + bss) of an ELF file."""
    sections = berkeley_sizes(elf) if elf is not None else None
    if sections is None:
        return None
    return {"flash_bytes": sections["text"] + sections["data"], "ram_bytes": sections["data"] + sections["bss"]}


def required(sizes: dict[str, int | None] | None, source: str) -> dict[str, int | None]:
    """The sizes of a build that passed; a harness error when ``source`` gave none."""
    if sizes is None:
        raise HarnessError(Category.HARNESS_ERROR, f"the build reported no program size ({source})")
    return sizes
