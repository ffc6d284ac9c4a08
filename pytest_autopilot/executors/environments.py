"""Software environments that generated programs run against (after MLonMCU's isolated
environments and Kenning's platform definitions).

A board entry (``software:``) or a case (``environment:``, which wins) declares a Python version
and pinned packages, e.g. the Raspberry Pi's numpy 1.26 and tflite_runtime. The harness builds
each declaration once per machine as a venv in ``core.util.cache_dir("envs")/<key>``, ``key`` a
hash of the declaration, under a machine-wide lock (xdist workers wait for one build), and
records ``pip freeze`` beside it. The venv comes from the base interpreter, never from the
harness's venv, so the harness's packages (pytest, pytest_autopilot, TensorFlow) are not on
its path. A build failure is one line naming the package and the install command
(``ToolchainMissing``: only that case fails, or skips with ``--autopilot-missing-toolchain=skip``).
Cases with neither declaration run with the harness's interpreter, as before.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pytest_autopilot.cases import defaults
from pytest_autopilot.core.errors import ToolchainMissing
from pytest_autopilot.core.util import atomic_write, cache_dir, file_lock

LAYOUT_VERSION = 1  # part of the key: a change of how environments are built rebuilds them
BUILD_TIMEOUT_S = 1800.0
READY, SPEC_FILE, FREEZE_FILE = "READY", "spec.json", "freeze.txt"
_MEMO: dict[str, "Environment"] = {}
_FAILED: dict[str, str] = {}  # key -> the one-line failure: a sweep does not retry a failed build per item
_MEMO_LOCK = threading.Lock()


@dataclass(frozen=True)
class EnvironmentSpec:
    """A declared environment: ``name`` (board name, or the case's) and where it was declared."""

    name: str
    python: str  # "3.11"
    packages: tuple[str, ...]
    declared_in: str  # for messages: hardware/raspberry_pi4.yaml or a case file
    display: bool = False  # runs get a virtual X display (not part of the venv, so not of the key)
    sources: tuple[tuple[str, str], ...] = ()  # (package line, where its pin comes from): provenance, not the key

    @property
    def key(self) -> str:
        payload = json.dumps({"layout": LAYOUT_VERSION, "python": self.python, "packages": list(self.packages)})
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Environment:
    """A built environment: its venv folder and interpreter."""

    spec: EnvironmentSpec
    path: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def trees(self) -> list[str]:
        """What a sandbox must show (read-only) for this interpreter: the venv and its base installation."""
        home = _read_cfg(self.path).get("home")
        base = str(Path(os.path.realpath(home)).parent) if home else None
        return sorted({str(self.path.resolve()), *([base] if base else [])})

    def describe(self) -> dict[str, Any]:
        """What an attempt's execution records about the software it ran with."""
        return {"name": self.spec.name, "key": self.spec.key, "python": self.spec.python,
                "declared_in": self.spec.declared_in, "display": "xvfb" if self.spec.display else None}

    def argv(self, script: str) -> list[str]:
        """The command running ``script`` with this interpreter (under xvfb-run when it has a display)."""
        command = [str(self.python), "-s", script]
        if not self.spec.display:
            return command
        xvfb = shutil.which("xvfb-run")
        if xvfb is None or shutil.which("Xvfb") is None:
            raise ToolchainMissing(f"environment {self.spec.name} ({self.spec.declared_in}) has a display: "
                                   "install it with: apt-get install -y xvfb xauth")
        return [xvfb, "-a", "-s", "-screen 0 1280x1024x24 -nolisten tcp", *command]


def root() -> Path:
    return cache_dir("envs")


def spec_for(case) -> EnvironmentSpec | None:
    """The case's environment: its own ``environment:``, else its board's ``software:``, else None."""
    software = getattr(case.spec, "environment", None)
    if software is not None:
        return declared_spec(case.name, software, f"case {case.name}")
    board = case.board
    if board is not None and board.software is not None:
        return declared_spec(board.name, board.software, f"hardware/{board.name}.yaml")
    return None


def declared_spec(name: str, software, declared_in: str) -> EnvironmentSpec:
    """The spec of a ``software:`` / ``environment:`` declaration (``cases.boards.Software``)."""
    return EnvironmentSpec(name, software.python, tuple(software.packages), declared_in, software.display,
                           tuple(software.sources.items()))


def ensure_for_case(case) -> Environment | None:
    """Build (once) the environment a ``python``-executor case runs with; None when it declares none."""
    spec = spec_for(case) if case.executor == "python" else None
    return ensure(spec) if spec is not None else None


def install_command(spec: EnvironmentSpec, folder: Path | str = "<venv>") -> str:
    """The commands that build ``spec`` by hand (shown when a build fails)."""
    return (f"python{spec.python} -m venv {folder} && {folder}/bin/python -m pip install "
            + shlex.join(spec.packages))


def ensure(spec: EnvironmentSpec) -> Environment:
    """The built environment of ``spec``: from memory, from the cache, or built now under the lock."""
    key = spec.key
    with _MEMO_LOCK:
        if key in _MEMO:
            return _MEMO[key]
        if key in _FAILED:
            raise ToolchainMissing(_FAILED[key])
    try:
        env = build(spec)[0]
    except ToolchainMissing as exc:
        with _MEMO_LOCK:
            _FAILED[key] = str(exc)
        raise
    with _MEMO_LOCK:
        _MEMO[key] = env
    return env


def build(spec: EnvironmentSpec, folder: Path | None = None) -> tuple[Environment, bool]:
    """(environment, whether this call built it). Safe across processes: one builds, the others
    wait on the lock and find it ready."""
    base = folder or root()
    base.mkdir(parents=True, exist_ok=True)
    target = base / spec.key
    env = Environment(spec, target)
    if (target / READY).is_file():
        return env, False
    with file_lock(base / f"{spec.key}.lock", BUILD_TIMEOUT_S):
        if (target / READY).is_file():
            return env, False  # another worker built it while we waited
        if target.exists():  # an interrupted build: start over
            shutil.rmtree(target, ignore_errors=True)
        started = time.monotonic()
        try:
            _create(spec, target)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        info = {"key": spec.key, "names": [spec.name], "declared_in": spec.declared_in, "python": spec.python,
                "python_version": _run([str(env.python), "-c", "import sys; print(sys.version.split()[0])"]).strip(),
                "packages": list(spec.packages), "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "build_s": round(time.monotonic() - started, 1)}
        atomic_write(target / SPEC_FILE, json.dumps(info, indent=1) + "\n")
        atomic_write(target / READY, "")
    return env, True


def _create(spec: EnvironmentSpec, target: Path) -> None:
    python = base_interpreter(spec)
    venv = subprocess.run([python, "-m", "venv", str(target)], capture_output=True, text=True, timeout=300)
    if venv.returncode != 0:
        raise ToolchainMissing(f"environment {spec.name} ({spec.declared_in}): {python} -m venv failed "
                               f"({_last_line(venv.stderr)}); install the venv module (apt-get install "
                               f"python3-venv) or run: {install_command(spec)}")
    cmd = [str(target / "bin" / "python"), "-m", "pip", "install", "--no-input", "--disable-pip-version-check",
           "-q", *spec.packages]
    try:
        pip = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, env=_build_env())
    except subprocess.TimeoutExpired:
        raise ToolchainMissing(f"environment {spec.name} ({spec.declared_in}): pip install did not finish in "
                               f"{BUILD_TIMEOUT_S:.0f} s; run by hand: {install_command(spec)}") from None
    if pip.returncode != 0:
        raise ToolchainMissing(f"environment {spec.name} ({spec.declared_in}): {failed_package(pip.stderr, spec)}; "
                               f"install command: {install_command(spec)}")
    freeze = _run([str(target / "bin" / "python"), "-m", "pip", "freeze", "--all", "--disable-pip-version-check"])
    atomic_write(target / FREEZE_FILE, freeze)


def base_interpreter(spec: EnvironmentSpec) -> str:
    """An interpreter of ``spec.python`` outside any venv: ours when the version matches, else one on PATH."""
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == spec.python:
        return getattr(sys, "_base_executable", None) or sys.executable
    found = shutil.which(f"python{spec.python}")
    if found:
        try:
            out = _run([found, "-c", "import sys; print(sys.base_prefix + '/bin/python%d.%d' % sys.version_info[:2])"])
            return out.strip() if Path(out.strip()).exists() else found
        except (OSError, subprocess.SubprocessError):
            pass
    raise ToolchainMissing(f"environment {spec.name} ({spec.declared_in}) needs Python {spec.python}, which is not "
                           f"on PATH; install it (apt-get install python{spec.python} python{spec.python}-venv, "
                           f"or pyenv install {spec.python}), then run: {install_command(spec)}")


_PIP_FAILURES = (
    re.compile(r"No matching distribution found for (\S+)"),
    re.compile(r"Could not find a version that satisfies the requirement (\S+)"),
    re.compile(r"Cannot install (.+?) because these package versions have conflicting dependencies"),
    re.compile(r"Failed to build (?:installable wheels for some pyproject\.toml based projects\s*\W*\s*)?(\S+)"),
    re.compile(r"Invalid requirement: '([^']+)'"),
)


def failed_package(stderr: str, spec: EnvironmentSpec) -> str:
    """What pip could not install, as a short clause naming the package."""
    for pattern in _PIP_FAILURES:
        match = pattern.search(stderr)
        if match:
            what = match.group(1).strip().rstrip(".")
            return f"pip cannot install {what} ({_last_line(stderr)})"
    return f"pip cannot install {', '.join(spec.packages)} ({_last_line(stderr)})"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    return " ".join(((errors or lines or ["no output"])[-1]).split())[:200]


def _build_env() -> dict[str, str]:
    """pip's environment: ours without the harness venv's activation (PYTHONPATH, VIRTUAL_ENV)."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


def _run(cmd: list[str]) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=300, env=_build_env()).stdout


def _read_cfg(folder: Path) -> dict[str, str]:
    try:
        lines = (folder / "pyvenv.cfg").read_text().splitlines()
    except OSError:
        return {}
    return {k.strip(): v.strip() for k, _, v in (line.partition("=") for line in lines) if v}


# ----------------------------------------------------------------------------- inspection


def frozen_packages(spec: EnvironmentSpec, folder: Path | None = None) -> list[str] | None:
    """The exact package list (``pip freeze --all``) of a built environment; None when not built."""
    path = (folder or root()) / spec.key
    if not (path / READY).is_file():
        return None
    return [line for line in (path / FREEZE_FILE).read_text().splitlines() if line.strip()]


def listing(folder: Path | None = None) -> list[dict[str, Any]]:
    """Every built environment: its spec.json plus its folder and size."""
    base = folder or root()
    out = []
    for path in sorted(base.iterdir()) if base.is_dir() else []:
        if path.is_dir() and (path / READY).is_file():
            try:
                info = json.loads((path / SPEC_FILE).read_text())
            except (OSError, ValueError):
                info = {"key": path.name}
            size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
            out.append({**info, "path": str(path), "size": size})
    return out


def remove(key: str, folder: Path | None = None) -> bool:
    """Remove one built environment (under its lock, so no build is cut short)."""
    base = folder or root()
    target = base / key
    if not target.is_dir() or not re.fullmatch(r"[0-9a-f]{16}", key):
        return False
    with file_lock(base / f"{key}.lock", BUILD_TIMEOUT_S):
        shutil.rmtree(target)
    (base / f"{key}.lock").unlink(missing_ok=True)
    with _MEMO_LOCK:
        _MEMO.pop(key, None)
    return True


def provenance(cases: dict[str, Any]) -> dict[str, Any]:
    """For a report: per case file, which software ran its programs and that their code was not
    rewritten; per environment, its declaration and exact package list (None: not built here)."""
    envs: dict[str, Any] = {}
    per_case: dict[str, Any] = {}
    for rel, case in sorted(cases.items()):
        spec = spec_for(case) if case.executor == "python" else None
        per_case[rel] = {"environment": spec.name if spec else "harness venv", "code_rewritten": False}
        if spec is not None:
            per_case[rel]["environment_key"] = spec.key
            envs.setdefault(spec.key, {"name": spec.name, "declared_in": spec.declared_in, "python": spec.python,
                                       "packages": list(spec.packages), "sources": dict(spec.sources),
                                       "pip_freeze": frozen_packages(spec)})
    return {"by_case": per_case, "environments": envs}


# ----------------------------------------------------------------------------- pytest-autopilot envs


def declared(hardware_dir: Path, cases_dir: Path) -> dict[str, EnvironmentSpec]:
    """Every environment the boards (``software:``) and cases (``environment:``) declare, by name."""
    import yaml

    from pytest_autopilot.cases.boards import HardwareError, Software, load_board_file

    found: dict[str, EnvironmentSpec] = {}
    for path in defaults.board_files(hardware_dir).values():
        try:
            board = load_board_file(path)
        except HardwareError:
            continue  # a broken board file is reported where it is used
        if board.software is not None:
            found[board.name] = declared_spec(board.name, board.software, f"hardware/{path.name}")
    for path in sorted(Path(cases_dir).rglob("*.yaml")):
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
            sw = Software.model_validate(raw["environment"]) if isinstance(raw, dict) and raw.get("environment") else None
        except Exception:  # noqa: BLE001 - an invalid case is reported at collection
            continue
        if sw is not None:
            found[path.stem] = declared_spec(path.stem, sw, f"case {path.stem}")
    return found


def command(action: str, names: list[str], hardware_dir: Path, cases_dir: Path, remove_all: bool = False, *,
            out: Callable[[str], None], err: Callable[[str], None]) -> int:
    """``pytest-autopilot envs list|build|remove``: its lines go to ``out``, its problems to ``err`` (the
    CLI prints them); returns the exit status."""
    specs = declared(hardware_dir, cases_dir)
    built = {info["key"]: info for info in listing()}
    if action == "list":
        for name, spec in sorted(specs.items()):
            info = built.get(spec.key)
            state = f"built {info['size'] / 1e6:.0f} MB, {info.get('build_s', '?')} s" if info else "not built"
            out(f"{name:<20} {spec.key}  python {spec.python}  {state:<22} {spec.declared_in}: {' '.join(spec.packages)}")
        for key, info in sorted(built.items()):
            if key not in {s.key for s in specs.values()}:
                out(f"{'(undeclared)':<20} {key}  python {info.get('python')}  built  {info['path']}")
        return 0
    unknown = [n for n in names if n not in specs and n not in built]
    if unknown:
        err(f"pytest-autopilot envs: no environment {unknown[0]!r}; declared: {', '.join(sorted(specs)) or 'none'}")
        return 2
    if action == "build":
        status = 0
        for name in names or sorted(specs):
            started = time.monotonic()
            try:
                env, fresh = build(specs[name])
            except ToolchainMissing as exc:
                err(str(exc))
                status = 1
                continue
            took = f"built in {time.monotonic() - started:.1f} s" if fresh else "already built"
            out(f"{name}: {took}: {env.path}")
        return status
    keys = sorted(built) if remove_all else [specs[n].key if n in specs else n for n in names]
    for key in keys:
        out(f"{'removed' if remove(key) else 'not built'}: {key}")
    return 0
