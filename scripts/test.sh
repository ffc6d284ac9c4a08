#!/usr/bin/env bash
# The test suite: installs what it needs, then runs the tests on 2 workers and prints the 25
# slowest. Tests sharing a heavy fixture (TensorFlow server, sshd, Pi environment, wheel venv,
# firmware core) carry an xdist_group and run on one worker (--dist loadgroup).
# --live also runs the live local-model tests (each loads the real model): run it before any
# change to the local provider lands. Other arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --local  # the live local-model smoke test needs the binding and the 0.5B model
args=()
for arg in "$@"; do
  if [ "$arg" = "--live" ]; then args+=(--run-live); else args+=("$arg"); fi
done
exec .venv/bin/python -m pytest tests --ignore=tests/bench -n 2 --dist loadgroup --durations=25 \
  -p no:cacheprovider -q "${args[@]}"
