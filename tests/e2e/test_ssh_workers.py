"""Scale-out on xdist's SSH gateways: two ``--tx ssh=...//chdir=...//python=...`` workers on the
loopback sshd, each in its own git clone of the project, replaying the scripted stand-in; every
result reaches the controller's report once, naming its worker, host and checkout."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

# one worker starts the session's sshd (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("sshd")

ROOT = Path(__file__).resolve().parents[2]
# what the clean_split sweep reads; the package itself comes from the venv's editable install (the tree under test)
PROJECT = ("pyproject.toml", "cases/dp", "prompts", "hardware", "cassettes/dp/clean_split")
GIT = ["git", "-c", "user.name=autopilot", "-c", "user.email=autopilot@localhost", "-c", "init.defaultBranch=main"]


def _checkout(tmp_path: Path, conftest: str | None = None) -> Path:
    """A committed copy of the project (with ``conftest`` as its conftest.py): the controller's
    checkout, which the workers clone."""
    src = tmp_path / "controller"
    src.mkdir()
    if conftest is not None:
        (src / "conftest.py").write_text(conftest)
    for rel in PROJECT:
        if (ROOT / rel).is_dir():
            shutil.copytree(ROOT / rel, src / rel, ignore=shutil.ignore_patterns("__pycache__", "*.partial"))
        else:
            shutil.copyfile(ROOT / rel, src / rel)
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "checkout"]):
        subprocess.run([*GIT, *args], cwd=src, check=True, capture_output=True, timeout=60)
    return src


def _ssh_config(sshd, tmp_path: Path) -> Path:
    """An ssh client config naming the loopback sshd, its key and its pinned host key."""
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {sshd.host_key_line}\n")
    config = tmp_path / "ssh_config"
    config.write_text(f"Host autopilot-loopback\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User {sshd.user}\n"
                      f"  IdentityFile {sshd.client_key_path}\n  IdentitiesOnly yes\n  BatchMode yes\n"
                      f"  UserKnownHostsFile {known}\n  StrictHostKeyChecking yes\n")
    return config


def _fleet(sshd, tmp_path: Path, conftest: str | None = None) -> tuple[Path, list[Path], list[str]]:
    """The controller's checkout, two worker clones of it and the pytest command line of the sweep."""
    if shutil.which("ssh") is None:
        pytest.skip("no ssh client: execnet's ssh gateway runs `ssh`; install it with: apt-get install -y openssh-client")
    pytest.importorskip("execnet", reason="execnet (pytest-xdist's gateways) is not installed")
    src = _checkout(tmp_path, conftest)
    clones = [tmp_path / "host-a", tmp_path / "host-b"]
    for clone in clones:
        subprocess.run(["git", "clone", "-q", str(src), str(clone)], check=True, capture_output=True, timeout=60)
    config = _ssh_config(sshd, tmp_path)
    tx = [f"--tx=ssh=autopilot-loopback//ssh_config={config}//python={sys.executable}//chdir={clone}" for clone in clones]
    # no path argument: each worker collects in its own checkout (testpaths names the folder)
    args = [sys.executable, "-m", "pytest", "-o", "testpaths=cases", "-k", "clean_split", "--record-mode", "none",
            "--autopilot-run-id", "fleet", "-p", "no:cacheprovider", "-d", *tx]
    return src, clones, args


def test_two_ssh_gateways_report_every_run_once_with_its_host(sshd, tmp_path):
    src, clones, args = _fleet(sshd, tmp_path)
    out = subprocess.run([*args, "--autopilot-runs", "2"], cwd=src, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "2 passed" in out.stdout

    report = src / "reports/fleet"
    data = json.loads((report / "results.json").read_text())
    assert data["complete"] is True
    nodeids = [r["nodeid"] for r in data["runs"]]
    assert sorted(nodeids) == [f"cases/dp/clean_split.yaml::clean_split[scripted-standin-r0{i}]" for i in (1, 2)]
    assert all(r["status"] == "success" for r in data["runs"])
    hosts = data["provenance"]["worker_hosts"]
    assert sorted(hosts) == ["gw0", "gw1"] and data["provenance"]["workers"] == "2"
    commit = data["provenance"]["git_commit"]
    for run in data["runs"]:
        worker = hosts[run["worker"]]
        assert run["host"] == socket.gethostname() == worker["host"]
        assert run["cassette"] == f"cassettes/dp/clean_split/scripted-standin-r0{run['repetition']}.yaml"
    for gw, clone in zip(("gw0", "gw1"), clones):
        worker = hosts[gw]
        assert worker["gateway"] == "ssh" and worker["destination"] == "autopilot-loopback"
        assert worker["chdir"] == worker["root"] == str(clone) and worker["git_commit"] == commit
        journal = Path(worker["journal"])  # stays in the worker's checkout: the provenance points to it
        assert journal == clone / f"reports/fleet/journal/{gw}.jsonl" and journal.is_file()
        # replay (--record-mode none) writes no cassette on the worker
        status = subprocess.run(["git", "status", "--porcelain", "cassettes"], cwd=clone, capture_output=True,
                                text=True, check=True).stdout
        assert status == ""
    # the controller keeps a copy of what came back, for a resume of this sweep
    mirrored = [json.loads(line)["run"]["nodeid"] for line in (report / "journal/master.jsonl").read_text().splitlines()]
    assert sorted(mirrored) == sorted(nodeids)
    runs_csv = (report / "runs.csv").read_text().splitlines()
    header = runs_csv[0].split(",")
    assert header[header.index("worker"):header.index("worker") + 3] == ["worker", "host", "error"]


DYING_WORKER = """\
import os
from pathlib import Path

FLAG = Path({flag!r})  # on this machine, so only the first worker to reach r02 dies, once


def pytest_runtest_call(item):
    if "r02" in item.nodeid and FLAG.exists():
        FLAG.unlink()
        os._exit(3)
"""


def test_a_remote_worker_that_dies_loses_no_result_and_resume_finishes_the_sweep(sshd, tmp_path):
    """A worker on another machine dies mid-run: the others' results are all in the report, which is
    incomplete and says how to finish; --autopilot-resume reruns only the lost run, on the fleet."""
    flag = tmp_path / "die-once"
    flag.write_text("")
    src, _, args = _fleet(sshd, tmp_path, DYING_WORKER.format(flag=str(flag)))
    args = [*args, "--autopilot-runs", "3"]
    first = subprocess.run(args, cwd=src, capture_output=True, text=True, timeout=240)
    assert not flag.exists(), first.stdout[-3000:] + first.stderr[-2000:]
    report = src / "reports/fleet"
    data = json.loads((report / "results.json").read_text())
    lost = "cases/dp/clean_split.yaml::clean_split[scripted-standin-r02]"
    assert data["complete"] is False
    assert "1 run(s) died with a worker on another machine" in data["incomplete_reason"]
    assert "--autopilot-resume fleet" in data["incomplete_reason"]
    finished = sorted(r["nodeid"] for r in data["runs"] if r["status"] == "success")
    assert finished == [lost.replace("r02", "r01"), lost.replace("r02", "r03")], data["runs"]

    again = subprocess.run([*args, "--autopilot-resume", "fleet"], cwd=src, capture_output=True, text=True, timeout=240)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    assert "1 passed" in again.stdout  # only the lost run ran again: xdist counts the deselected on its workers
    data = json.loads((report / "results.json").read_text())
    assert data["complete"] is True
    assert sorted(r["nodeid"] for r in data["runs"]) == [lost.replace("r02", f"r0{i}") for i in (1, 2, 3)]
    assert all(r["status"] == "success" for r in data["runs"])


def test_a_path_argument_with_an_ssh_gateway_is_a_usage_error(toy_project, pytester):
    """xdist cannot hand a path to a worker in another checkout: one line says what to do instead."""
    result = pytester.runpytest_subprocess("cases", "-d", "--tx", "ssh=nobody@192.0.2.1//chdir=/srv/checkout")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*cases: with a --tx gateway on another machine*-o testpaths=cases*"])
