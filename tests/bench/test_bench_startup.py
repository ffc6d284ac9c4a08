"""What the installed plugin adds to a pytest start in a project that did not opt in (target:
at most 50 ms), and what hypothesis's own pytest plugin adds (a dependency's, skippable with
``-p no:hypothesispytest``). Run without xdist and read the printed figures:

    .venv/bin/python -m pytest tests/bench/test_bench_startup.py -p no:xdist -m bench -s

Each figure is the median of interleaved runs of the same command with and without the plugin,
so a busy machine slows both sides alike."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.bench

PAIRS = 15
TARGET_S = 0.050


@pytest.fixture
def unrelated_project(tmp_path):
    """A project with YAML data under cases/ and one trivial test, and no autopilot configuration."""
    (tmp_path / "cases" / "sub").mkdir(parents=True)
    (tmp_path / "cases" / "x.yaml").write_text("rows: [1, 2, 3]\n")
    (tmp_path / "cases" / "sub" / "data.yaml").write_text("name: not a case\n")
    (tmp_path / "test_trivial.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    return tmp_path


def _start(cwd, *args) -> float:
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider", *args],
                         cwd=cwd, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - started
    assert out.returncode == 0 and "1 passed" in out.stdout, out.stdout + out.stderr
    return elapsed


def _added_cost(cwd, base: list[str], without: str) -> tuple[float, float]:
    """Median of (with - without) over interleaved pairs, and the median start without."""
    _start(cwd, *base)  # warm the file cache and the .pyc files
    diffs, bases = [], []
    for _ in range(PAIRS):
        with_it = _start(cwd, *base)
        without_it = _start(cwd, *base, "-p", without)
        diffs.append(with_it - without_it)
        bases.append(without_it)
    return statistics.median(diffs), statistics.median(bases)


def test_startup_cost_without_opt_in(unrelated_project):
    ours, base = _added_cost(unrelated_project, ["-p", "no:hypothesispytest"], "no:autopilot")
    theirs, _ = _added_cost(unrelated_project, ["-p", "no:autopilot"], "no:hypothesispytest")
    print(f"\npytest start in a project without autopilot configuration: {base * 1000:.0f} ms without either "
          f"plugin; pytest-autopilot adds {ours * 1000:+.0f} ms (target <= {TARGET_S * 1000:.0f} ms); "
          f"hypothesis's pytest plugin adds {theirs * 1000:+.0f} ms (-p no:hypothesispytest skips it)")
    assert ours <= TARGET_S, f"the inert plugin adds {ours * 1000:.0f} ms to a pytest start"
