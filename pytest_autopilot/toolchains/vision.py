"""What the PyCPU-SG / PyTPU-SG cases need beyond Python: OpenCV, an OCR (the labels_drawn check),
an sshd for the loopback board, the paper's user-supplied detection inputs, and a real Coral."""

from __future__ import annotations

import os
import shutil

from pytest_autopilot.executors.inputs import external_available
from pytest_autopilot.toolchains import Requirement, module_available

ASSETS_ENV = "AUTOPILOT_DETECTION_ASSETS"
PAPER_FILES = ("detect.tflite", "labelmap.txt", "sheeps.mp4")

OPENCV = Requirement(module_available("cv2"), "pip install opencv-python-headless")
OCR = Requirement(lambda: module_available("pytesseract")() and shutil.which("tesseract") is not None,
                  "apt-get install -y tesseract-ocr && pip install pytesseract  # the labels_drawn check reads label text")
SSHD = Requirement(lambda: os.path.exists("/usr/sbin/sshd") and shutil.which("ssh-keygen") is not None,
                   "apt-get install -y openssh-server  # the loopback_ssh board runs its own sshd")
PAPER_DETECTION_ASSETS = Requirement(lambda: external_available(ASSETS_ENV, list(PAPER_FILES)),
                                     f"export {ASSETS_ENV}=/path/to/dir  # holding the paper's {', '.join(PAPER_FILES)}")
PAPER_EDGETPU_MODEL = Requirement(lambda: external_available(ASSETS_ENV, ["detect_edgetpu.tflite"]),
                                  f"put detect_edgetpu.tflite (edgetpu_compiler detect.tflite) into ${ASSETS_ENV}")
CORAL = Requirement(lambda: os.environ.get("AUTOPILOT_CORAL") == "1",
                    "connect the Coral Dev Board of hardware/coral_dev_board.yaml (key file in $AUTOPILOT_CORAL_KEY or "
                    "the SSH agent, host key in ~/.ssh/known_hosts), then export AUTOPILOT_CORAL=1")
