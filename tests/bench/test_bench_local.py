"""A live local-model sweep: 2 shipped cases × 2 repetitions with Qwen2.5-Coder-0.5B served by
the plugin's llama.cpp server. Run without xdist and read the printed figures:

    .venv/bin/python -m pytest tests/bench/test_bench_local.py -p no:xdist -m bench -s

It prints the model's generation speed (completion tokens per second of LLM time) and splits the
session's wall time into LLM time, the generated programs' own run time, and the rest: the
harness (collection, server start, sandbox set-up, oracles, reports). The goal is a harness share
of at most 5 % of wall time; it is printed, not asserted, since a shared machine moves it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_autopilot.llm.local_models import model_file

ROOT = Path(__file__).parents[2]
MODEL = "qwen2.5-coder-0.5b"
CASES = ("cases/dp/clean_split.yaml", "cases/pysg/shapes_video.yaml")
pytestmark = [pytest.mark.bench,
              pytest.mark.skipif(not model_file(MODEL).is_file(),
                                 reason=f"install the model: pytest-autopilot models --install {MODEL}")]


def test_live_local_sweep_tokens_per_second_and_harness_share(tmp_path):
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "pytest", *CASES, "--autopilot-llm", f"local/{MODEL}", "--autopilot-runs", "2",
         "--record-mode", "all", "--autopilot-max-attempts", "2", "--autopilot-run-id", "bench",
         "--autopilot-cassettes-dir", str(tmp_path / "cassettes"), "--autopilot-reports-dir", str(tmp_path / "reports"),
         "-p", "no:xdist", "-p", "no:cacheprovider", "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=3600, env=os.environ.copy())
    wall = time.perf_counter() - started
    assert out.returncode in (0, 1), out.stdout[-3000:] + out.stderr[-3000:]
    runs = json.loads((tmp_path / "reports/bench/results.json").read_text())["runs"]
    assert len(runs) == 4 and all(r["status"] in ("success", "failure") for r in runs)
    attempts = [a for r in runs for a in r["attempts"]]
    llm_s = sum(a["latency_s"] or 0 for a in attempts)
    tokens = sum(a["completion_tokens"] or 0 for a in attempts)
    programs_s = sum((a["execution"] or {}).get("duration_s") or 0 for a in attempts)
    harness_s = wall - llm_s - programs_s
    print(f"\nlocal sweep: {len(runs)} runs, {len(attempts)} LLM calls, wall {wall:.1f} s")
    print(f"  LLM time       {llm_s:7.1f} s  ({llm_s / wall:5.1%})  {tokens} completion tokens, "
          f"{tokens / llm_s:.1f} tokens/s")
    print(f"  programs       {programs_s:7.1f} s  ({programs_s / wall:5.1%})")
    print(f"  harness, rest  {harness_s:7.1f} s  ({harness_s / wall:5.1%})  goal: at most 5 %")
    assert llm_s > 0 and tokens > 0
