"""This repository's own use of the plugin's hooks: the parts only its shipped cases need.

The paper-faithful PySG cases (cases/pysg/sheeps_paper*.yaml) run the paper's own detection
model on its sheep video. Those files are the paper's, not this repository's (they are never
committed), so whether they are on this machine is a requirement of these cases, not of the
plugin: a case names it under ``requires.toolchains`` and, when it is missing, fails (or skips)
with how to supply the files.
"""

from __future__ import annotations

from pytest_autopilot.executors.inputs import external_available

ASSETS_ENV = "AUTOPILOT_DETECTION_ASSETS"  # the folder holding them (the cases' external_inputs.env)
PAPER_FILES = ("detect.tflite", "labelmap.txt", "sheeps.mp4")
EDGETPU_MODEL = "detect_edgetpu.tflite"


def pytest_autopilot_register(registry):
    registry.toolchain("paper_detection_assets", lambda: external_available(ASSETS_ENV, list(PAPER_FILES)),
                       f"export {ASSETS_ENV}=/path/to/dir  # holding the paper's {', '.join(PAPER_FILES)}")
    registry.toolchain("paper_edgetpu_model", lambda: external_available(ASSETS_ENV, [EDGETPU_MODEL]),
                       f"put {EDGETPU_MODEL} (edgetpu_compiler detect.tflite) into ${ASSETS_ENV}")
