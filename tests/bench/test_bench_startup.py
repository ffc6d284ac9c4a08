"""What installing pytest-autopilot adds to a pytest start in a project that did not opt in
(target: at most 50 ms), counting every pytest plugin its dependencies bring (issue 24: a
dependency's plugin once cost ~1.5 s per start). Run without xdist and read the printed figure:

    .venv/bin/python -m pytest tests/bench/test_bench_startup.py -p no:xdist -m bench -s

"Not installed" is the same command with ``-p no:NAME`` for the plugin and for each pytest11
entry point of its dependency closure (this checkout's pyproject.toml: the required
dependencies, not the optional extras), so other packages in the shared venv stay on both
sides. Runs alternate with and without, so a busy machine slows both sides alike; the figures are
the medians of the per-pair differences, in CPU time (user + system of the pytest process: what
it costs, and what a loaded machine disturbs least) and in wall time. The target is checked on
the CPU time."""

from __future__ import annotations

import re
import resource
import statistics
import subprocess
import sys
import time
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

pytestmark = pytest.mark.bench

RUNS = 20
TARGET_S = 0.050
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def unrelated_project(tmp_path):
    """A project with YAML data under cases/ and one trivial test, and no autopilot configuration."""
    (tmp_path / "cases" / "sub").mkdir(parents=True)
    (tmp_path / "cases" / "x.yaml").write_text("rows: [1, 2, 3]\n")
    (tmp_path / "cases" / "sub" / "data.yaml").write_text("name: not a case\n")
    (tmp_path / "test_trivial.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    return tmp_path


def _distribution_name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;(]", requirement.strip(), maxsplit=1)[0]


def dependency_plugins() -> list[str]:
    """The pytest11 entry points of the installed distributions this checkout requires, transitively."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    todo = [_distribution_name(r) for r in project["dependencies"]]
    seen: set[str] = set()
    plugins: set[str] = set()
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen or name == "pytest":  # pytest is there either way
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        plugins |= {ep.name for ep in dist.entry_points if ep.group == "pytest11"}
        todo += [_distribution_name(r) for r in dist.requires or [] if "extra ==" not in r]
    return sorted(plugins)


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _start(cwd, *args) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one pytest start."""
    cpu, started = _cpu_s(), time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider", *args],
                         cwd=cwd, capture_output=True, text=True, timeout=300)
    elapsed, cpu = time.perf_counter() - started, _cpu_s() - cpu
    assert out.returncode == 0 and "1 passed" in out.stdout, out.stdout + out.stderr
    return cpu, elapsed


def test_startup_cost_without_opt_in(unrelated_project):
    theirs = dependency_plugins()
    ours = ["-p", "no:autopilot"]
    without = [*ours, *(arg for name in theirs for arg in ("-p", f"no:{name}"))]
    _start(unrelated_project)  # warm the file cache and the .pyc files
    # each round: everything installed; without our plugin (its dependencies' still on); without either
    runs = [(_start(unrelated_project), _start(unrelated_project, *ours), _start(unrelated_project, *without))
            for _ in range(RUNS)]

    def added(i: int, j: int, kind: int) -> float:  # median of (variant i - variant j); kind 0: CPU, 1: wall
        return statistics.median(r[i][kind] - r[j][kind] for r in runs)

    total_cpu = added(0, 2, 0)
    print(f"\npytest start in a project without autopilot configuration, {RUNS} runs each; without "
          f"pytest-autopilot and its dependencies' pytest plugins ({', '.join(theirs) or 'none'}): median "
          f"{statistics.median(r[2][0] for r in runs) * 1000:.0f} ms CPU, "
          f"{statistics.median(r[2][1] for r in runs) * 1000:.0f} ms wall. Installing pytest-autopilot adds "
          f"{total_cpu * 1000:+.0f} ms CPU ({added(0, 2, 1) * 1000:+.0f} ms wall; target <= {TARGET_S * 1000:.0f} ms "
          f"CPU): its own plugin {added(0, 1, 0) * 1000:+.0f} ms and its dependencies' plugins "
          f"{added(1, 2, 0) * 1000:+.0f} ms CPU")
    assert total_cpu <= TARGET_S, (f"installing pytest-autopilot adds {total_cpu * 1000:.0f} ms CPU to a pytest "
                                   f"start (dependencies' plugins: {', '.join(theirs)})")
