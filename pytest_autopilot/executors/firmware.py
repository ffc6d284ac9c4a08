"""The ``arduino`` and ``arm-none-eabi`` executors: build the firmware with the board's
toolchain, then run it on the board's simulator (or, with ``--autopilot-hil``, on the board)."""

from __future__ import annotations

import os


def _firmware(ctx):
    from pytest_autopilot.toolchains.arduino import toolchain_for_case

    return toolchain_for_case(ctx.case, ctx.sandbox, hil=bool(ctx.options.get("hil")),
                              hil_port=os.environ.get("AUTOPILOT_HIL_PORT"))


arduino_executor = _firmware
arm_executor = _firmware
