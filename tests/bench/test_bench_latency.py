"""Throughput when the model is slow: the scripted stand-in answers like a remote API (a fixed
latency per call, optional jitter and 429s: ``llm/standin.py``), and the same DP sweep runs at
``-n 2``, ``-n 8`` and ``-n 16`` on this machine. Printed per concurrency: wall time, the ideal
bound max(calls x latency / workers, CPU work / cores), their ratio, and the peak RSS of the
whole process tree. Run it on its own:

    .venv/bin/python -m pytest tests/bench/test_bench_latency.py -p no:xdist -m bench -s

Knobs (environment): AUTOPILOT_BENCH_RUNS (repetitions per case, default 16),
AUTOPILOT_BENCH_LATENCY_S (default 2), AUTOPILOT_BENCH_JITTER_S (default 0.5),
AUTOPILOT_BENCH_429_EVERY (default 0: none). Only completion and equal verdicts at every
concurrency are asserted; the figures are for reading.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from proc_scan import tree_rss_kb

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.bench
CONCURRENCY = (2, 8, 16)


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _sweep(project: Path, workers: int, runs: int, env: dict[str, str]) -> dict:
    """One live sweep against the slow stand-in: wall and CPU seconds, peak tree RSS, the records."""
    run_id = f"latency-n{workers}"
    args = [sys.executable, "-m", "pytest", "cases/dp", "--autopilot-runs", str(runs), "-n", str(workers), "-q",
            "-p", "no:cacheprovider", "-p", "no:randomly", "--record-mode", "all", "--autopilot-run-id", run_id,
            "--autopilot-cassettes-dir", f"cassettes-n{workers}"]
    cpu_before, started = _children_cpu_s(), time.perf_counter()
    proc = subprocess.Popen(args, cwd=project, env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    peak = {"total": 0, "worst": 0}

    def sample():
        while proc.poll() is None:
            rss = tree_rss_kb(proc.pid)
            peak["total"] = max(peak["total"], sum(rss.values()))
            peak["worst"] = max(peak["worst"], max(rss.values(), default=0))
            time.sleep(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = proc.communicate(timeout=3600)
    wall = time.perf_counter() - started
    sampler.join()
    assert proc.returncode in (0, 1), output[-3000:]  # 1: some runs failed their oracle, as scripted
    runs_out = json.loads((project / f"reports/{run_id}/results.json").read_text())["runs"]
    return {"wall": wall, "cpu": _children_cpu_s() - cpu_before, "rss": peak, "runs": runs_out}


def test_slow_model_sweep_throughput_by_concurrency():
    runs = int(os.environ.get("AUTOPILOT_BENCH_RUNS", "16"))
    latency = float(os.environ.get("AUTOPILOT_BENCH_LATENCY_S", "2"))
    jitter = float(os.environ.get("AUTOPILOT_BENCH_JITTER_S", "0.5"))
    env = {"AUTOPILOT_STANDIN_LATENCY_S": str(latency), "AUTOPILOT_STANDIN_JITTER_S": str(jitter),
           "AUTOPILOT_STANDIN_429_EVERY": os.environ.get("AUTOPILOT_BENCH_429_EVERY", "0")}
    # not tmp_path: other pytest sessions on the machine rotate /tmp/pytest-of-<user> away meanwhile
    with tempfile.TemporaryDirectory(prefix="autopilot-bench-latency-") as folder:
        # its own CPU gate: slots held by other jobs of the machine would be measured as this sweep's wait
        env["AUTOPILOT_CACHE_DIR"] = str(Path(folder) / "cache")
        _measure(Path(folder) / "p", runs, latency, jitter, env)


def _measure(project: Path, runs: int, latency: float, jitter: float, env: dict[str, str]) -> None:
    project.mkdir()
    for name in ("cases", "prompts", "hardware", "pyproject.toml"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, project / name)
    cores = len(os.sched_getaffinity(0))
    results = {n: _sweep(project, n, runs, env) for n in CONCURRENCY}
    verdicts = {n: sorted((r["nodeid"], r["status"], len(r["attempts"])) for r in out["runs"])
                for n, out in results.items()}
    assert all(v == verdicts[CONCURRENCY[0]] for v in verdicts.values())
    print(f"\nBENCH slow-model sweep: {len(verdicts[2])} DP runs, latency {latency}s + up to {jitter}s jitter, "
          f"{cores} cores")
    print(f"{'workers':>7} {'calls':>5} {'wall s':>7} {'ideal s':>7} {'ratio':>5} {'CPU s':>6} "
          f"{'RSS total MB':>12} {'RSS max/proc MB':>15}")
    for n, out in results.items():
        calls = sum(len(r["attempts"]) + sum(a.get("transient_retries") or 0 for a in r["attempts"])
                    for r in out["runs"])
        ideal = max(calls * (latency + jitter / 2) / n, out["cpu"] / cores)
        print(f"{n:>7} {calls:>5} {out['wall']:>7.1f} {ideal:>7.1f} {ideal / out['wall']:>5.2f} {out['cpu']:>6.1f} "
              f"{out['rss']['total'] / 1024:>12.0f} {out['rss']['worst'] / 1024:>15.0f}")
