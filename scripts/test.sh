#!/usr/bin/env bash
# The test suite: installs what it needs, then runs the tests on 2 workers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --local  # the live local-model tests need the binding and the 0.5B model
exec .venv/bin/python -m pytest tests --ignore=tests/bench -n 2 -p no:cacheprovider -q "$@"
