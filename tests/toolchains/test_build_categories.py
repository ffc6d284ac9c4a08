"""True categories for failed firmware builds (issue 22): compile, link and budget failures are
told apart from the build's own output. The outputs come from real builds (host gcc; the Arm GNU
toolchain with a small linker script for a flash region the image overflows)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from pytest_autopilot.core.records import Category, ExecResult, Verdict, build_failure_category
from pytest_autopilot.oracles.legacy import legacy_compiles


def _build(tmp_path, code: str, *args: str, compiler: str = "gcc") -> str:
    (tmp_path / "main.c").write_text(code)
    done = subprocess.run([compiler, *args, "main.c", "-o", "main.elf"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0, "the build was meant to fail"
    return done.stdout + done.stderr


def test_a_type_error_is_a_compile_error(tmp_path):
    out = _build(tmp_path, "int f(int a);\nint main(void) { return f(1, 2); }\n")
    assert "too many arguments" in out and build_failure_category(out) == Category.COMPILE_ERROR


def test_an_undefined_reference_is_a_link_error(tmp_path):
    out = _build(tmp_path, "void apds9960_end(void);\nint main(void) { apds9960_end(); return 0; }\n")
    assert "undefined reference to" in out and build_failure_category(out) == Category.LINK_ERROR


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs the Arm GNU toolchain: apt-get install -y gcc-arm-none-eabi")
def test_an_image_over_the_flash_region_is_over_budget(tmp_path):
    (tmp_path / "tiny.ld").write_text("MEMORY { FLASH (rx) : ORIGIN = 0, LENGTH = 1K }\n"
                                      "SECTIONS { .text : { *(.text*) *(.rodata*) } > FLASH }\n")
    code = "const char table[4096] = {1};\nint main(void) { return table[0]; }\nvoid _start(void) { main(); }\n"
    out = _build(tmp_path, code, "-mcpu=cortex-m3", "-mthumb", "-nostdlib", "-T", "tiny.ld", compiler="arm-none-eabi-gcc")
    assert "will not fit in region" in out and "ld returned 1" in out  # a link failure too: the budget comes first
    assert build_failure_category(out) == Category.BUDGET_EXCEEDED


def test_arduino_clis_size_refusal_is_over_budget():
    # arduino-cli's own message when a sketch does not fit (recorded text: no AVR core is installed here)
    out = "Sketch uses 40000 bytes (124%) of program storage space. Maximum is 32256 bytes.\nSketch too big; see ..."
    assert build_failure_category(out) == Category.BUDGET_EXCEEDED


def test_the_legacy_compile_check_carries_the_same_category(tmp_path):
    out = _build(tmp_path, "void missing(void);\nint main(void) { missing(); return 0; }\n")
    execution = ExecResult(1, "", out, 0.1, isolation={"phase": "build", "build": {"returncode": 1}})
    verdict: Verdict = legacy_compiles(execution)
    assert not verdict.passed and verdict.category == Category.LINK_ERROR
