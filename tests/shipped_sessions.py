"""The two heavy child sessions of tests/e2e/test_shipped.py (the self-test of every shipped case
and the offline replay sweep), and their head start: under xdist the controller starts them in
the background as soon as the workers report that their tests were collected, so they run while
the workers go through the rest of the suite instead of holding a worker for minutes each. The
fixtures then wait for the result. Without xdist (or when the tests are not selected) a fixture
runs its session itself, as before. Either way the session, its arguments and its checks are the
same."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parents[1]
PAPER_DETECTION = ROOT.parent / "shared/paper-assets/detection"  # user-supplied inputs of the paper cases
REPLAYED_RUNS = 4  # the most scripts a case gives the stand-in; r(k) repeats r(k - scripts)'s requests
SESSION_TIMEOUT_S = 1500
BACKGROUND_ENV = "AUTOPILOT_TESTS_BACKGROUND_DIR"  # set by the controller for its workers
TRIGGERS = {  # session -> the test that needs it (its other tests share the module fixture)
    "self-test": "tests/e2e/test_shipped.py::test_self_test_of_shipped_cases",
    "offline-sweep": "tests/e2e/test_shipped.py::test_offline_sweep_replays_every_shipped_cassette",
}


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST") and k != BACKGROUND_ENV}
    if PAPER_DETECTION.is_dir():
        out["AUTOPILOT_DETECTION_ASSETS"] = str(PAPER_DETECTION)
    return out


def pytest_argv(*args: str, reports: Path) -> list[str]:
    # as scripts/sweep.sh: cases whose toolchain or board is absent here are skipped with the reason;
    # every replayed cassette must match its committed manifest
    return [sys.executable, "-m", "pytest", *args, "-p", "no:cacheprovider", "--autopilot-missing-toolchain", "skip",
            "--autopilot-cassette-check", "error", "--autopilot-reports-dir", str(reports)]


def yaml_load(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text())


def case_files() -> list[Path]:
    return sorted(p for p in (ROOT / "cases").rglob("*.yaml") if not {"assets", "solutions"} & set(p.parts))


def runnable_here(case_path: Path) -> bool:
    from project_registries import project_registries

    from pytest_autopilot.cases.spec import load_case
    from pytest_autopilot.toolchains import ToolchainMissing, check_requirements

    case = load_case(case_path, ROOT / "prompts")
    try:
        os.environ.update({k: v for k, v in env().items() if k == "AUTOPILOT_DETECTION_ASSETS"})
        check_requirements(case.spec.requires.toolchains, project_registries().toolchains)
    except ToolchainMissing:
        return False
    return True


def standin_scripts(case_path: Path) -> int:
    return len(yaml_load(case_path).get("standin") or [])


def repeats(case_path: Path) -> list[str]:
    """The stand-in repetitions up to REPLAYED_RUNS that repeat an earlier one's script (and cassette:
    test_repeated_standin_cassettes_equal_their_scripts), as node ids."""
    rel, scripts = case_path.relative_to(ROOT), standin_scripts(case_path)
    return [f"{rel}::{case_path.stem}[scripted-standin-r{rep:02d}]" for rep in range(scripts + 1, REPLAYED_RUNS + 1)]


def session_args(name: str) -> tuple[list[str], dict]:
    """(pytest arguments, facts the tests check) of a heavy session."""
    if name == "self-test":
        return ["cases", "--autopilot-self-test", "-n", "2", "-q"], {}
    runnable = [p for p in case_files() if runnable_here(p)]
    repeated = [nodeid for case in runnable for nodeid in repeats(case)]
    args = ["cases", "-n", "2", "--autopilot-runs", str(REPLAYED_RUNS), "--autopilot-run-id", "sweep", "-q",
            "--record-mode", "none", *(arg for nodeid in repeated for arg in ("--deselect", nodeid))]
    return args, {"cases": runnable, "repeats": repeated}


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str
    folder: Path  # holds reports/
    facts: dict


def run(name: str, folder: Path) -> Finished:
    """Run a heavy session here and now."""
    args, facts = session_args(name)
    out = subprocess.run(pytest_argv(*args, reports=folder / "reports"), cwd=ROOT, capture_output=True, text=True,
                         timeout=SESSION_TIMEOUT_S, env=env())
    return Finished(out.returncode, out.stdout, out.stderr, folder, facts)


# ----------------------------------------------------------------------------- the head start

_started: dict[str, subprocess.Popen] = {}


def start_in_background(name: str, base: Path) -> None:
    """Controller side: start a heavy session; its output and exit status land in ``base/name/``."""
    folder = base / name
    folder.mkdir(parents=True)
    try:
        args, _ = session_args(name)
        with open(folder / "stdout", "w") as out, open(folder / "stderr", "w") as err:
            proc = subprocess.Popen(pytest_argv(*args, reports=folder / "reports"), cwd=ROOT, stdout=out, stderr=err,
                                    env=env(), start_new_session=True)
    except Exception as exc:  # the fixture reports it: the test fails with this line, the suite goes on
        (folder / "returncode").write_text(f"error: could not start the {name} session: {exc!r}")
        return
    _started[name] = proc

    def finish() -> None:
        try:
            code = proc.wait(timeout=SESSION_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            stop(proc)
            code = f"error: the {name} session ran over {SESSION_TIMEOUT_S} s and was killed"
        (folder / "returncode.tmp").write_text(str(code))
        os.replace(folder / "returncode.tmp", folder / "returncode")

    threading.Thread(target=finish, name=f"background-{name}", daemon=True).start()


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def stop_all() -> None:
    """Controller side, at the end of the session: nothing started here outlives it."""
    for proc in _started.values():
        stop(proc)


def result(name: str, tmp_path: Path) -> Finished:
    """Worker side: the session the controller started for us, once it ended; else run it here."""
    base = os.environ.get(BACKGROUND_ENV)
    folder = Path(base) / name if base else None
    if folder is None or not folder.is_dir():
        return run(name, tmp_path)
    deadline = time.monotonic() + SESSION_TIMEOUT_S + 60
    while not (folder / "returncode").is_file():
        if time.monotonic() > deadline:
            raise AssertionError(f"the background {name} session left no exit status in {folder}")
        time.sleep(1)
    code = (folder / "returncode").read_text()
    if code.startswith("error:"):
        raise AssertionError(code)
    _, facts = session_args(name)
    return Finished(int(code), (folder / "stdout").read_text(), (folder / "stderr").read_text(), folder, facts)
