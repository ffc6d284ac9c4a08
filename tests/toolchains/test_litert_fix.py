"""The loopback board's LiteRT fix (issue 22): a program that asks for the Edge TPU delegate on a
machine without libedgetpu and falls back to the CPU leaves stderr clean. An unfixed copy of the
installed LiteRT shows the noise the paper's legacy check failed every correct program on."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pytest_autopilot.toolchains import litert_fix

FALLBACK = """
import sys
sys.path.insert(0, sys.argv[1])
from ai_edge_litert.interpreter import load_delegate
try:
    load_delegate("libedgetpu.so.1")
except (ValueError, OSError) as exc:
    print("no Edge TPU: falling back to the CPU")
"""


def _run_fallback(shadow) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", FALLBACK, str(shadow)], capture_output=True, text=True, timeout=120)


@pytest.fixture
def unfixed_copy(tmp_path):
    """ai_edge_litert as installed, but its interpreter.py as released (links to every other file)."""
    source = litert_fix.interpreter_source()
    if source is None:
        pytest.skip("ai_edge_litert is not installed: pip install ai-edge-litert")
    package = tmp_path / "ai_edge_litert"
    package.mkdir()
    for entry in source.parent.iterdir():
        if entry.name not in ("interpreter.py", "__pycache__"):
            (package / entry.name).symlink_to(entry)
    released = source.read_text().replace(litert_fix.FIXED, litert_fix.UNFIXED)
    (package / "interpreter.py").write_text(released)
    return package / "interpreter.py"


def test_the_fix_silences_the_failed_delegate_load(unfixed_copy):
    before = _run_fallback(unfixed_copy.parent.parent)
    assert "no Edge TPU" in before.stdout
    assert "AttributeError: 'Delegate' object has no attribute '_library'" in before.stderr  # the released bug
    assert litert_fix.needs_fix(unfixed_copy) and litert_fix.apply(unfixed_copy)
    assert not litert_fix.apply(unfixed_copy)  # idempotent
    after = _run_fallback(unfixed_copy.parent.parent)
    assert "no Edge TPU" in after.stdout and after.stderr == ""


def test_this_installation_is_fixed():
    assert litert_fix.quiet_fallback(), f"run: {litert_fix.FIX_COMMAND} (scripts/setup.sh does)"
    assert _run_fallback("/nonexistent").stderr == ""
