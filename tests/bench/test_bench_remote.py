"""Remote-attempt overhead over a warm SSH connection on loopback (a real OpenSSH sshd):
mktemp, SFTP upload of main.py and a 100 kB input, run a program that does nothing, download,
kill sweep and cleanup. Run without xdist and read the printed figures:

    .venv/bin/python -m pytest tests/bench/test_bench_remote.py -p no:xdist -m bench -s

Target: median < 0.5 s per attempt."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/sshd.py

from sshd_plugin import skip_without_sshd  # noqa: E402

from pytest_autopilot.executors.limits import Limits  # noqa: E402
from pytest_autopilot.executors.sandbox import Sandbox  # noqa: E402
from pytest_autopilot.executors.ssh.loopback import LoopbackSSHD  # noqa: E402
from pytest_autopilot.executors.ssh.executor import RemoteExecutor  # noqa: E402

pytestmark = pytest.mark.bench
ATTEMPTS = 15


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    skip_without_sshd()
    sshd = LoopbackSSHD(base_dir=tmp_path_factory.mktemp("sshd")).start()
    yield sshd
    sshd.stop()


@pytest.mark.parametrize("python", ["harness", "system"])
def test_remote_attempt_overhead(server, tmp_path, python):
    interpreter = sys.executable if python == "harness" else "/usr/bin/python3"
    if not Path(interpreter).exists():
        pytest.skip(f"{interpreter} missing")
    target = server.target("bench", python=interpreter)
    sandbox = Sandbox(Limits(timeout_s=10), base_dir=tmp_path / "local")
    started = time.perf_counter()
    tc = RemoteExecutor(target, sandbox)
    tc.connection.ensure()
    connect_s = time.perf_counter() - started
    conn = tc.connection
    rtt = []
    for _ in range(5):
        t = time.perf_counter()
        conn.run("true")
        rtt.append(time.perf_counter() - t)
    times, phases = [], []
    inputs = {"data/input.bin": b"\0" * 100_000}
    try:
        for _ in range(ATTEMPTS):
            workdir = sandbox.new_workdir()
            t = time.perf_counter()
            result = tc.execute("pass\n", workdir, inputs, Limits(timeout_s=10))
            times.append(time.perf_counter() - t)
            assert result.returncode == 0
            phases.append(result.isolation["phases_s"])
            sandbox.cleanup(workdir)
    finally:
        tc.close()
    median = statistics.median(times)
    per_phase = {k: round(statistics.median(p[k] for p in phases), 4) for k in phases[0]}
    print(f"\nremote attempt ({python} python {interpreter}): connect {connect_s * 1000:.0f} ms once; "
          f"exec round trip ('true') median {statistics.median(rtt) * 1000:.0f} ms; "
          f"attempt median {median * 1000:.0f} ms (min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}, "
          f"n={ATTEMPTS}); phases (median s): {per_phase}; connections opened: {conn.connects}")
    assert conn.connects == 1
    assert median < 0.5, f"remote attempt overhead {median:.3f} s >= 0.5 s"
