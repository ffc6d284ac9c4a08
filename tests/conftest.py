"""Shared fixtures: a small, self-contained autopilot project inside pytester's temp dir."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import shipped_sessions

pytest_plugins = ["sshd_plugin"]  # the real-sshd fixtures (sshd, ssh_target)

# In-process pytester runs restore sys.modules afterwards, and a C extension first imported
# inside one (numpy.fft, pulled in by scipy for the reports) cannot be imported again in the
# same worker. Import those up front so no in-process run is the first to load them.
# litellm too (about 3 s of CPU): every in-process run that asks a model then shares this import
# instead of paying for it in a child process.
import numpy.fft  # noqa: E402,F401
import pandas  # noqa: E402,F401
import scipy.stats  # noqa: E402,F401

from pytest_autopilot.llm.client import import_litellm  # noqa: E402

import_litellm()



def pytest_sessionstart(session):
    """Under xdist (the controller): a folder for the heavy sessions test_shipped starts early."""
    if session.config.pluginmanager.has_plugin("dsession"):
        base = session.config._tmp_path_factory.mktemp("background-sessions", numbered=False)
        os.environ[shipped_sessions.BACKGROUND_ENV] = str(base)  # before the workers start: they inherit it


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids):
    """The controller, once a worker has collected: start the heavy sessions its selected tests need."""
    base = os.environ.get(shipped_sessions.BACKGROUND_ENV)
    for name, trigger in shipped_sessions.TRIGGERS.items():
        if base and not (Path(base) / name).exists() and any(i.startswith(trigger) for i in ids):
            shipped_sessions.start_in_background(name, Path(base))


def pytest_unconfigure(config):
    shipped_sessions.stop_all()


def pytest_addoption(parser):
    parser.addoption("--run-live", action="store_true", default=False,
                     help="also run the live local-model tests marked `live` (each loads the real model; "
                          "run them before a change to the local provider lands: bash scripts/test.sh --live)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-live"):
        return
    skip = pytest.mark.skip(reason="a live local-model test: run with --run-live (bash scripts/test.sh --live)")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)


REPAIR = (Path(__file__).parents[1] / "pytest_autopilot/data/prompts/common/repair.j2").read_text()

TOY_CASE = """\
stage: DP
description: write the answer
context: {number: 42}
steps:
  - name: code
    prompt: toy/answer.j2
    oracle: {name: toy_answer, params: {expected: "42"}}
solutions:
  reference: {code: answer/solutions/reference.py}
  bad:
    code:
      - {file: answer/solutions/bad_no_output.py, why: exits 0 without writing}
      - {file: answer/solutions/bad_wrong.py, why: writes 41}
      - {file: answer/solutions/bad_crash.py, why: raises}
      - {file: answer/solutions/bad_die.py, why: makes the oracle kill the worker (crash test)}
standin:
  - {code: [bad_no_output, reference]}
  - {code: [reference]}
  - {code: [bad_crash, bad_wrong]}
repair: {max_attempts: 2}
"""

# A toy oracle registered from the project's conftest, as a user would add one. Seeing
# "die" in the output makes it kill its own process when AUTOPILOT_TOY_DIE is set: the
# worker-crash test uses that.
TOY_CONFTEST = """\
import os
from pytest_autopilot.core.records import Category, Check, Verdict

def pytest_autopilot_register(registry):
    registry.oracle("toy_answer", toy_answer)

def toy_answer(ctx):
    path = ctx.workdir / "out.txt"
    if not path.is_file():
        return Verdict.from_checks("toy_answer", [Check("exists", False, "out.txt missing")], Category.ARTIFACT_MISSING)
    text = path.read_text().strip()
    if text == "die" and os.environ.get("AUTOPILOT_TOY_DIE"):
        os._exit(3)
    return Verdict.from_checks("toy_answer", [Check("value", text == ctx.params["expected"], f"got {text!r}")])
"""

SOLUTIONS = {
    "reference.py": 'open("out.txt", "w").write("42")\nprint("wrote the answer")\n',
    "bad_no_output.py": 'print("done")\n',
    "bad_wrong.py": 'open("out.txt", "w").write("41")\n',
    "bad_crash.py": 'import time\nraise SystemExit(f"boom at {time.time()}")\n',
    "bad_die.py": 'open("out.txt", "w").write("die")\n',
}


@pytest.fixture
def toy_project(pytester):
    """A pytester dir holding one toy case, its prompts, solutions and a toy oracle."""
    lay_out_toy_project(pytester.path)
    pytester.makeini("[pytest]\nautopilot_cases_dir = cases\n")
    return pytester.path


@pytest.fixture(scope="session")
def lay_out_toy():
    """``lay_out_toy(root)``: the toy project's files under any folder (no ini file)."""
    return lay_out_toy_project


@pytest.fixture(scope="session")
def record_toy():
    """``record_toy(root, runs)``: a toy project under ``root``, its stand-in runs recorded by a real session."""
    return record_toy_project


def record_toy_project(root: Path, runs: int) -> subprocess.CompletedProcess:
    """Lay out the toy project under ``root`` and record ``runs`` stand-in runs (run id ``rec``) in a child
    session with its own cache folder, as a module fixture does once for the tests that replay them."""
    lay_out_toy_project(root)
    (root / "pytest.ini").write_text("[pytest]\nautopilot_cases_dir = cases\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHONPATH"))}
    return subprocess.run([sys.executable, "-m", "pytest", "cases", "-p", "no:xdist", "-p", "no:cacheprovider",
                           "--autopilot-runs", str(runs), "--record-mode", "once", "--autopilot-run-id", "rec"],
                          cwd=root, env={**env, "AUTOPILOT_CACHE_DIR": str(root / "cache")}, capture_output=True,
                          text=True, timeout=600)


def lay_out_toy_project(root: Path) -> None:
    """The toy case, its prompts, solutions and conftest (the toy oracle) under ``root``, without the ini file."""
    (root / "cases/toy/answer/solutions").mkdir(parents=True)
    (root / "prompts/toy").mkdir(parents=True)
    (root / "prompts/common").mkdir(parents=True)
    (root / "cases/toy/answer.yaml").write_text(TOY_CASE)
    for name, code in SOLUTIONS.items():
        (root / "cases/toy/answer/solutions" / name).write_text(code)
    (root / "prompts/toy/answer.j2").write_text("Write a Python program that writes {{ number }} to out.txt. {{ description }}\n")
    (root / "prompts/common/repair.j2").write_text(REPAIR)
    (root / "conftest.py").write_text(TOY_CONFTEST)


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def write_file():
    """``write_file(root, rel, text)``: write a dedented file, creating its folders."""
    return write


@pytest.fixture(scope="session")
def toy_sources() -> dict:
    """The toy project's texts (case, conftest, repair prompt, solutions) for projects built by hand."""
    return {"case": TOY_CASE, "conftest": TOY_CONFTEST, "repair": REPAIR, "solutions": SOLUTIONS}


NO_NETWORK = """
import socket
def _refuse(self, *args, **kwargs):
    raise AssertionError(f"network used during replay: {args}")
socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
"""


@pytest.fixture
def refuse_network():
    """``refuse_network(root)``: from now on the project's conftest fails any socket connection (a replay's proof)."""
    def refuse(root: Path) -> None:
        conftest = root / "conftest.py"
        conftest.write_text(conftest.read_text() + NO_NETWORK)

    return refuse


def _default_sigint() -> None:
    """A background job of a non-interactive shell starts with SIGINT ignored, and Python then
    installs no KeyboardInterrupt handler: give a child pytest a default SIGINT to be stopped with."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="session")
def interruptible():
    """``preexec_fn`` for a child process that a test stops with SIGINT."""
    return _default_sigint
