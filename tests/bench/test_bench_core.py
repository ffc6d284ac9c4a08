"""Core-harness benchmarks. Run without xdist, and read the printed figures:

    .venv/bin/python -m pytest tests/bench -p no:xdist -m bench -s

They assert the issue's targets too, but their job is to print numbers to compare."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.bench

MODULES_PROBE = """
import json, os, sys
def pytest_sessionfinish(session):
    heavy = [m for m in ("litellm", "tensorflow", "vcr", "openai", "pandas", "scipy") if m in sys.modules]
    open(os.environ["AUTOPILOT_MODULES_OUT"], "w").write(json.dumps(heavy))
"""


def _pytest(args, cwd, env=None):
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "pytest", *args], cwd=cwd, capture_output=True, text=True,
                         env={**os.environ, **(env or {})}, timeout=900)
    return time.perf_counter() - started, out


@pytest.fixture(scope="module")
def five_cases(tmp_path_factory, toy_sources):
    """The toy case five times over, in a throwaway project (collection only)."""
    SOLUTIONS, TOY_CASE, TOY_CONFTEST, REPAIR = (toy_sources[k] for k in ("solutions", "case", "conftest", "repair"))

    root = tmp_path_factory.mktemp("five")
    for i in range(5):
        case_dir = root / f"cases/toy/answer{i}/solutions"
        case_dir.mkdir(parents=True)
        (root / f"cases/toy/answer{i}.yaml").write_text(TOY_CASE.replace("answer/solutions", f"answer{i}/solutions"))
        for name, code in SOLUTIONS.items():
            (case_dir / name).write_text(code)
    (root / "prompts/toy").mkdir(parents=True)
    (root / "prompts/common").mkdir(parents=True)
    (root / "prompts/toy/answer.j2").write_text("Write {{ number }} to out.txt\n")
    (root / "prompts/common/repair.j2").write_text(REPAIR)
    (root / "conftest.py").write_text(TOY_CONFTEST + MODULES_PROBE)
    (root / "pytest.ini").write_text("[pytest]\nautopilot_cases_dir = cases\n")
    return root


def test_collect_150_items_is_fast_and_light(five_cases, tmp_path):
    probe = tmp_path / "modules.json"
    times = []
    for _ in range(3):
        elapsed, out = _pytest(["cases", "--co", "-q", "--autopilot-runs", "30", "-p", "no:xdist"], five_cases,
                               {"AUTOPILOT_MODULES_OUT": str(probe)})
        assert "150 tests collected" in out.stdout, out.stdout[-2000:]
        times.append(elapsed)
    heavy = json.loads(probe.read_text())
    print(f"\nBENCH collect 150 items (5 cases x 30 runs), whole pytest process: "
          f"min {min(times):.2f}s median {sorted(times)[1]:.2f}s; heavy modules imported: {heavy or 'none'}")
    assert "litellm" not in heavy and "tensorflow" not in heavy
    assert min(times) < 2.0


def test_replay_one_llm_call(benchmark, tmp_path):
    """One recorded stand-in call, replayed through litellm + vcrpy."""
    from pytest_autopilot.cases.spec import load_case
    from pytest_autopilot.llm.cassettes import make_vcr
    from pytest_autopilot.llm.client import LLMClient
    from pytest_autopilot.llm.profiles import resolve_llms
    from pytest_autopilot.llm.standin import StandinServer

    case_path = ROOT / "cases/dp/clean_split.yaml"
    case = load_case(case_path, ROOT / "prompts")
    spec = resolve_llms(None, None)[0]
    messages = [{"role": "user", "content": "benchmark prompt"}]
    meta = {"case": "c", "repetition": 1, "step_key": case.spec.steps[0].name, "attempt": 1}
    server = StandinServer({"c": case}).start()
    try:
        with make_vcr("once", tmp_path).use_cassette("bench.yaml"):
            LLMClient(spec, timeout_s=10, retries=0, api_base=server.url)(messages, meta)
    finally:
        server.stop()
    client = LLMClient(spec, timeout_s=10, retries=0, api_base="http://127.0.0.1:9/v1")
    with make_vcr("none", tmp_path).use_cassette("bench.yaml", allow_playback_repeats=True):
        for _ in range(5):  # warm-up
            client(messages, meta)
        answer = benchmark(client, messages, meta)
    assert "```python" in answer.text
    median_ms = benchmark.stats.stats.median * 1000
    print(f"\nBENCH replay one LLM call: median {median_ms:.1f} ms")
    assert median_ms < 20


def test_two_worker_replay_sweep_speedup(tmp_path):
    """The committed DP cassettes replayed on 1 and on 2 workers (same run, same machine)."""
    project = tmp_path / "p"
    project.mkdir()
    for name in ("cases", "prompts", "cassettes", "pyproject.toml"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, project / name)
    args = ["cases/dp", "--autopilot-runs", "8", "-q", "-p", "no:cacheprovider", "--record-mode", "none"]
    serial, out1 = _pytest([*args, "-p", "no:xdist", "--autopilot-run-id", "one"], project)
    parallel, out2 = _pytest([*args, "-n", "2", "--autopilot-run-id", "two"], project)
    for out in (out1, out2):
        assert "cassette_miss" not in out.stdout, out.stdout[-3000:]
    one = json.loads((project / "reports/one/results.json").read_text())["runs"]
    two = json.loads((project / "reports/two/results.json").read_text())["runs"]
    assert [(r["nodeid"], r["status"]) for r in one] == [(r["nodeid"], r["status"]) for r in two]
    print(f"\nBENCH DP replay sweep ({len(one)} runs): 1 worker {serial:.1f}s, 2 workers {parallel:.1f}s, "
          f"speed-up {serial / parallel:.2f}x")
    assert serial / parallel >= 1.7
