#!/usr/bin/env bash
# Idempotent setup on a fresh Debian machine: system packages, then a virtualenv in .venv
# with the project, its optional toolchains (TensorFlow, LiteRT, TFLM) and test extras. Re-running does nothing when everything is there.
# --local also installs the local-model extra (llama-cpp-python, built from source once) and the 0.5B model.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(python3 python3-venv python3-pip git ca-certificates util-linux
  chromium openssh-server  # chromium: HTML report rendering test; sshd: the loopback SSH target
  arduino-builder arduino-core-avr gcc-avr avr-libc simavr  # Arduino Uno cases on simavr
  gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm  # Cortex-M cases on QEMU
  cmake g++  # llama-cpp-python (local/ models) builds llama.cpp from source
  libgl1 libglib2.0-0 libsm6 libxext6 libxrender1 xvfb xauth  # the Pi environment's opencv-python (GUI) and its virtual display
  tesseract-ocr)  # the labels_drawn check's OCR (pytesseract calls it)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# python3 may come from elsewhere (pyenv); then only the missing extras matter
if command -v python3 >/dev/null && python3 -c 'import venv, ensurepip' 2>/dev/null; then
  missing=($(printf '%s\n' "${missing[@]}" | grep -vE '^python3(-venv|-pip)?$' || true))
fi
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

LOCAL=0
[ "${1:-}" = "--local" ] && LOCAL=1
extras=all
((LOCAL)) && extras=all,local

PY=.venv/bin/python
[ -x "$PY" ] || python3 -m venv .venv
stamp=.venv/.autopilot-installed
want="$(cat pyproject.toml scripts/constraints.txt | sha256sum | cut -d' ' -f1) $extras"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages into .venv ($extras)"
  if ((LOCAL)) && ! "$PY" -c 'import llama_cpp' 2>/dev/null; then
    echo "setup: building llama-cpp-python from source for local/ models: about 15 min on 2 cores, once (pip caches the wheel)"
  fi
  # A portable AVX2 build: llama.cpp's default -march=native enables AMX and AVX-512 kernels,
  # which crash with a general protection fault on VMs that advertise AMX without granting it.
  export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF}"
  "$PY" -m pip install -q --upgrade pip
  "$PY" -m pip install -q -c scripts/constraints.txt -e ".[$extras]"  # the verified versions (see that file)
  echo "$want" > "$stamp"
fi
# the loopback board's LiteRT: a failed Edge TPU delegate load must not print to stderr (idempotent)
"$PY" -m pytest_autopilot.toolchains.litert_fix >/dev/null
if ((LOCAL)); then
  .venv/bin/pytest-autopilot models --install qwen2.5-coder-0.5b >/dev/null  # verified; a no-op once installed
fi
