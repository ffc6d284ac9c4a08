#!/usr/bin/env bash
# The test suite under CPU load, so no test depends on an idle machine: four busy CPU workers
# (stress-ng --cpu 4 when installed, else four shell busy loops) run beside the README's test
# command and are stopped when it ends. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --local
if command -v stress-ng >/dev/null; then
  stress-ng --cpu 4 --quiet &
  load=($!)
else
  load=()
  for _ in 1 2 3 4; do (while :; do :; done) & load+=($!); done
fi
trap 'kill "${load[@]}" 2>/dev/null || true' EXIT
echo "stress-test: ${#load[@]} load process(es) running beside the suite"
.venv/bin/python -m pytest tests --ignore=tests/bench -n 2 --dist loadgroup -p no:cacheprovider -q "$@"
