"""The ``run_info`` and ``delegate_requested`` checks of ``vision_detection`` (see
:mod:`pytest_autopilot.oracles.vision`): the program's JSON run report says which delegate ran, and
its code asks for the Edge TPU delegate."""

from __future__ import annotations

import json
import re

from pytest_autopilot.core.records import Check
from pytest_autopilot.oracles import OracleContext

_DELEGATE_CALL = re.compile(r"(load_delegate|make_interpreter)\s*\(")


def run_info_checks(ctx: OracleContext, spec: dict) -> list[Check]:
    board = ctx.board
    expected = spec.get("delegate", "auto")
    if expected == "auto":
        expected = "edgetpu" if board is not None and "edgetpu" in board.capabilities else "cpu"
    rel = spec.get("path", "out/run_info.json")
    path = (ctx.workdir / rel).resolve()
    path = path if path.is_relative_to(ctx.workdir.resolve()) else None
    info = None
    if path is not None and path.is_file():
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            info = None
    if not isinstance(info, dict):
        checks = [Check("run_info", False, f"{rel} is missing or not a JSON object")]
    else:
        got = info.get("delegate")
        ok = got == expected
        where = "a board with an Edge TPU" if expected == "edgetpu" else "a target without an Edge TPU (CPU fallback expected)"
        checks = [Check("run_info", ok, f"delegate {got!r} on {where}" + ("" if ok else f"; expected {expected!r}"))]
    code = ctx.answer if isinstance(ctx.answer, str) else ""
    asks = bool(_DELEGATE_CALL.search(code)) and "edgetpu" in code
    checks.append(Check("delegate_requested", asks, "" if asks else
                        "the program never asks for the Edge TPU delegate (load_delegate('libedgetpu.so.1'))"))
    return checks
