#!/usr/bin/env bash
# The main job: a parallel sweep over every shipped case, offline, replaying the committed
# cassettes: the scripted stand-in's and the real local models'. Extra arguments go to pytest, e.g.
#   bash scripts/sweep.sh --autopilot-llm ollama/qwen2.5-coder:14b --record-mode=once
set -euo pipefail
cd "$(dirname "$0")/.."
# replaying needs no model; asking for a local/ model (to record) installs the binding and model first
case " $* " in *local/*) bash scripts/setup.sh --local ;; *) bash scripts/setup.sh ;; esac
set +e
# the paper's detection inputs are user-supplied; use the shared copy when it is beside the repo
if [ -z "${AUTOPILOT_DETECTION_ASSETS:-}" ] && [ -d ../shared/paper-assets/detection ]; then
  export AUTOPILOT_DETECTION_ASSETS="$(cd ../shared/paper-assets/detection && pwd)"
fi
# By default: every recorded repetition (the stand-in's 8, and each real-model and human-baseline run, r09 and
# r10 included), with each repair strategy; --autopilot-recorded-only deselects the combinations without a
# cassette. With --autopilot-llm (recording, say), 8 repetitions unless --autopilot-runs says otherwise.
defaults=()
case " $* " in *--autopilot-llm*) defaults=(--autopilot-runs 8) ;; *)
  defaults=(--autopilot-llm scripted/standin --autopilot-llm local/qwen2.5-coder-0.5b
            --autopilot-llm local/qwen2.5-coder-1.5b --autopilot-llm human/expert --autopilot-repair-strategy stateless
            --autopilot-repair-strategy conversation --autopilot-repair-strategy resample --autopilot-recorded-only) ;;
esac
# --autopilot-fail-on errors: runs that fail their strict oracle are a result (exit 0); set-up trouble
# (a cassette miss or bad cassette, a harness error, a crashed or incomplete run, a case file that
# cannot be loaded) exits 6, and pytest's own statuses (2 interrupted, 3 internal error, 4 usage) stand
.venv/bin/python -m pytest cases -n auto --record-mode=none \
  --autopilot-missing-toolchain skip --autopilot-fail-on errors -p no:cacheprovider -q -rs "${defaults[@]}" "$@"
status=$?
report="$(ls -dt reports/*/ 2>/dev/null | head -1)"
set -e
case "$status" in
  0) echo "sweep finished; report: $report" ;;
  6) echo "sweep finished with set-up trouble (see the gate line above); report: $report" >&2 ;;
  *) echo "sweep failed (pytest exit $status)" >&2 ;;
esac
exit "$status"
