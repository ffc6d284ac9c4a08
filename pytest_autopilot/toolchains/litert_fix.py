"""LiteRT's delegate fallback, made quiet: the ``loopback_ssh`` board's software fix.

ai-edge-litert (every release up to 2.3.0) sets ``Delegate._library`` only once the delegate's
library has loaded, but its ``__del__`` reads it unconditionally. On a board without libedgetpu,
every program that asks for the Edge TPU delegate and falls back to the CPU -- the correct
behaviour -- leaves ``Exception ignored in: <function Delegate.__del__ ...> AttributeError:
'Delegate' object has no attribute '_library'`` on stderr, and the paper's legacy check (an
empty stderr) fails it, the case's own reference included. A Coral board prints nothing there.

The loopback board runs the harness's own Python, so the fix goes into that installation: one
line of ``__del__`` reads the attribute with a default (a delegate that never loaded has nothing
to destroy). ``python -m pytest_autopilot.toolchains.litert_fix`` applies it (idempotent;
scripts/setup.sh runs it); the requirement ``litert_quiet_fallback`` fails a case that needs it
with that command until then. The package is located without importing it.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from pytest_autopilot.toolchains import Requirement

UNFIXED = "    if self._library is not None:\n      self._library.tflite_plugin_destroy_delegate"
FIXED = ("    if getattr(self, '_library', None) is not None:  # fixed for pytest-autopilot: __init__ may fail first\n"
         "      self._library.tflite_plugin_destroy_delegate")
FIX_COMMAND = "python -m pytest_autopilot.toolchains.litert_fix"


def interpreter_source() -> Path | None:
    """ai_edge_litert/interpreter.py of this interpreter's installation, or None when absent."""
    spec = importlib.util.find_spec("ai_edge_litert")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "interpreter.py"
    return path if path.is_file() else None


def needs_fix(path: Path) -> bool:
    return UNFIXED in path.read_text(encoding="utf-8")


def quiet_fallback() -> bool:
    """LiteRT is installed and a failed delegate load leaves stderr clean (fixed, or fixed upstream)."""
    path = interpreter_source()
    return path is not None and not needs_fix(path)


def apply(path: Path) -> bool:
    """Fix ``path`` in place; True when it changed. Python recompiles it (its mtime changes)."""
    text = path.read_text(encoding="utf-8")
    if UNFIXED not in text:
        return False
    path.write_text(text.replace(UNFIXED, FIXED, 1), encoding="utf-8")
    return True


LITERT_QUIET_FALLBACK = Requirement(quiet_fallback,
                                    f"pip install ai-edge-litert, then fix its Delegate.__del__ with: {FIX_COMMAND}")


def main() -> int:
    path = interpreter_source()
    if path is None:
        print("litert_fix: ai_edge_litert is not installed here; nothing to fix", file=sys.stderr)
        return 0
    changed = apply(path)
    print(f"litert_fix: {path}: {'fixed Delegate.__del__' if changed else 'already fixed'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
