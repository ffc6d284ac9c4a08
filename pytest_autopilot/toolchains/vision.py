"""What the PyCPU-SG / PyTPU-SG cases need beyond Python: OpenCV, an OCR (the labels_drawn check),
an sshd for the loopback board, and a real Coral. (The paper's own detection files, which only
this repository's paper-faithful cases use, are its top-level conftest.py's requirements.)"""

from __future__ import annotations

import os
import shutil

from pytest_autopilot.toolchains import Requirement, module_available

OPENCV = Requirement(module_available("cv2"), "pip install opencv-python-headless")
OCR = Requirement(lambda: module_available("pytesseract")() and shutil.which("tesseract") is not None,
                  "apt-get install -y tesseract-ocr && pip install pytesseract  # the labels_drawn check reads label text")
SSHD = Requirement(lambda: os.path.exists("/usr/sbin/sshd") and shutil.which("ssh-keygen") is not None,
                   "apt-get install -y openssh-server  # the loopback_ssh board runs its own sshd")
CORAL = Requirement(lambda: os.environ.get("AUTOPILOT_CORAL") == "1",
                    "connect the Coral Dev Board of hardware/coral_dev_board.yaml (key file in $AUTOPILOT_CORAL_KEY or "
                    "the SSH agent, host key in ~/.ssh/known_hosts), then export AUTOPILOT_CORAL=1")
