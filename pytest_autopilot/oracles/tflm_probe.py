"""Run a .tflite model on TensorFlow Lite Micro in a child process and find its smallest arena.

TFLM is the real microcontroller runtime (``pip install tflite-micro``: its reference
kernels compiled for the host). Two of its behaviours shape this module:

* an arena that is too small usually makes ``Interpreter(...)`` raise ``RuntimeError``
  ("TFLM failed to allocate tensors"), but a very small one can **segfault the process**
  (seen at 64 bytes: "Failed to allocate tail memory", then SIGSEGV);
* the size it reports (``print_allocations()`` -> "Arena allocation total N bytes", written
  to the C-level stderr) is *less* than the smallest arena that really works.

So every trial runs in a child process (``python tflm_probe.py ...``; the MC oracle starts it
through the sandbox), which binary-searches the smallest working arena itself and prints one
JSON line per trial *before* and *after* it, flushed. If the child dies, the parent knows
which arena killed it, counts that arena as failing and starts a new child with the
narrowed bounds. "Working" means: the interpreter is built with that arena and every given
input row runs through ``invoke()``. Working is assumed monotonic in the arena size (a
bigger arena never breaks a model that ran in a smaller one), which is how TFLM's
allocator behaves.

The arena found is the host build's: TFLM's bookkeeping structs hold pointers, so on a
32-bit Cortex-M the same model needs a little *less* -- the host figure is a safe bound.

This file is also the child program: it imports only the standard library, numpy and
tflite_micro (no pytest_autopilot), so it runs as a plain script inside the sandbox.

Child usage: ``python tflm_probe.py MODEL INPUTS.npy --candidates N [N ...] [--bad B] [--good G]
[--step 16]``. ``INPUTS.npy`` holds the rows in the model's input dtype and shape (the batch
dimension is the row axis). Output: JSON lines ``{"try": n}``, ``{"arena": n, "ok": bool,
"error": str, "reported_total": int}`` and finally ``{"final": n, "outputs": [...],
"reported_total": int}`` or ``{"final": null, "error": ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

PROBE_SCRIPT = Path(__file__).resolve()
STEP = 16  # TFLM aligns arena allocations to 16 bytes
MAX_CHILDREN = 25  # crashes tolerated before the search gives up
_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")


# --------------------------------------------------------------------------- child side


def _emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def _allocations_report(interpreter) -> str:
    """``print_allocations()`` writes to the C-level stderr: capture fd 2 around the call."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        try:
            os.dup2(tmp.fileno(), 2)
            interpreter.print_allocations()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        return tmp.read().decode("utf-8", errors="replace")


def _run(model: bytes, rows, arena: int, want_report: bool = False):
    """Build a TFLM interpreter with ``arena`` bytes and invoke it on every row.
    Returns (outputs, reported total or None)."""
    from tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(model, arena_size=int(arena))
    outputs = []
    for row in rows:
        interpreter.set_input(row[None, ...], 0)
        interpreter.invoke()
        outputs.append(interpreter.get_output(0).copy())
    total = None
    if want_report:
        match = _TOTAL.search(_allocations_report(interpreter))
        total = int(match.group(1)) if match else None
    return outputs, total


def _trial(model: bytes, rows, arena: int) -> tuple[bool, str, int | None]:
    _emit({"try": arena})
    try:
        _, total = _run(model, rows, arena, want_report=True)
    except Exception as exc:  # noqa: BLE001 -- TFLM raises RuntimeError; anything else is a failure too
        _emit({"arena": arena, "ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]})
        return False, f"{type(exc).__name__}: {exc}", None
    _emit({"arena": arena, "ok": True, "reported_total": total})
    return True, "", total


def child_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="TFLM arena search (child side)")
    parser.add_argument("model")
    parser.add_argument("inputs")
    parser.add_argument("--candidates", type=int, nargs="+", required=True,
                        help="arena sizes tried in increasing order until one works")
    parser.add_argument("--bad", type=int, default=0, help="largest arena known to fail")
    parser.add_argument("--good", type=int, default=None, help="smallest arena known to work")
    parser.add_argument("--step", type=int, default=STEP)
    args = parser.parse_args(argv)

    import numpy as np

    model = Path(args.model).read_bytes()
    rows = np.load(args.inputs, allow_pickle=False)
    bad, good, error, total = args.bad, args.good, "", None
    if good is None:
        for arena in sorted(args.candidates):
            if arena <= bad:
                continue
            ok, error, total = _trial(model, rows, arena)
            if ok:
                good = arena
                break
            bad = arena
        if good is None:
            _emit({"final": None, "error": error[:2000]})
            return 0
    while good - bad > args.step:
        mid = bad + (good - bad) // 2
        mid -= mid % args.step
        if mid <= bad:
            mid = bad + args.step
        if mid >= good:
            break
        ok, _err, t = _trial(model, rows, mid)
        if ok:
            good, total = mid, t
        else:
            bad = mid
    outputs, total = _run(model, rows, good, want_report=True)
    _emit({"final": good, "outputs": [o.tolist() for o in outputs], "dtype": str(outputs[0].dtype) if outputs else "",
           "reported_total": total})
    return 0


# --------------------------------------------------------------------------- parent side


@dataclass
class ArenaSearch:
    """Outcome of ``find_smallest_arena``."""

    arena: int | None  # smallest working arena in bytes (None: it never ran)
    reported_total: int | None = None  # TFLM's own "Arena allocation total" at that arena
    outputs: list[Any] = field(default_factory=list)  # one output array (as nested lists) per input row
    error: str = ""  # why it never ran (TFLM's message, or the crash)
    crashes: list[int] = field(default_factory=list)  # arenas at which a child died
    children: int = 0  # child processes started
    trials: int = 0  # arenas tried in all
    duration_s: float = 0.0


# A runner takes argv-after-python (the probe script and its arguments) and a work dir and
# returns (returncode or None, stdout, stderr, note). Signal deaths are negative returncodes.
Runner = Callable[[list[str], Path], tuple[int | None, str, str, str]]


def subprocess_runner(timeout_s: float = 60.0) -> Runner:
    """Plain child process with a timeout (for callers without a sandbox)."""

    def run(args: list[str], workdir: Path):
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "SYSTEMROOT")}
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        try:
            proc = subprocess.run([sys.executable, "-E", "-s", *args], cwd=workdir, env=env, capture_output=True,
                                  text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            return None, out, "", f"timed out after {timeout_s:g} s"
        return proc.returncode, proc.stdout, proc.stderr, ""

    return run


def sandbox_runner(sandbox, limits) -> Runner:
    """The harness's sandbox: the model file is LLM output and TFLM parses it in C++."""

    def run(args: list[str], workdir: Path):
        result = sandbox.run_python(args[0], workdir, args=args[1:], limits=limits)
        note = "timed out" if result.timed_out else (f"hit the {result.limit_hit} limit" if result.limit_hit else "")
        code = -result.signal if result.signal and result.returncode is None else result.returncode
        return code, result.stdout, result.stderr, note

    return run


def find_smallest_arena(model_path: Path, inputs_path: Path, workdir: Path, candidates: list[int],
                        runner: Runner | None = None, step: int = STEP) -> ArenaSearch:
    """Binary-search the smallest arena that runs every row of ``inputs_path``.

    ``candidates`` are tried in increasing order first (e.g. the board's RAM budget, then a
    generous cap) until one works; the search then runs between the largest failing arena
    and that one. ``workdir`` must hold ``model_path`` and ``inputs_path`` (the child runs
    there); paths are passed relative to it when they lie inside it.
    """
    import time

    runner = runner or subprocess_runner()
    start = time.monotonic()
    result = ArenaSearch(arena=None)
    bad, good = 0, None

    def rel(path: Path) -> str:
        path = Path(path).resolve()
        return str(path.relative_to(workdir.resolve())) if path.is_relative_to(workdir.resolve()) else str(path)

    while result.children < MAX_CHILDREN:
        args = [str(PROBE_SCRIPT), rel(model_path), rel(inputs_path), "--candidates", *map(str, candidates),
                "--bad", str(bad), "--step", str(step)]
        if good is not None:
            args += ["--good", str(good)]
        result.children += 1
        code, stdout, stderr, note = runner(args, workdir)
        pending, final = None, None
        for line in stdout.splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "try" in record:
                pending = record["try"]
                result.trials += 1
            elif "arena" in record:
                pending = None
                if record["ok"]:
                    good = record["arena"]
                    result.reported_total = record.get("reported_total") or result.reported_total
                else:
                    bad = max(bad, record["arena"])
                    result.error = record.get("error", "")
            elif "final" in record:
                final = record
        if final is not None:
            if final["final"] is None:
                result.error = final.get("error") or result.error
            else:
                result.arena, result.error = final["final"], ""
                result.outputs = final.get("outputs", [])
                result.reported_total = final.get("reported_total") or result.reported_total
            break
        # the child died: the arena it was trying (if any) counts as failing
        how = note or (f"signal {-code}" if code is not None and code < 0 else f"exit code {code}")
        if pending is None:
            result.error = f"the TFLM probe died ({how}) outside a trial: {stderr.strip()[-500:]}"
            break
        result.crashes.append(pending)
        result.error = f"TFLM crashed ({how}) with a {pending}-byte arena"
        bad = max(bad, pending)
        if good is None and bad >= max(candidates):
            break
    result.duration_s = round(time.monotonic() - start, 3)
    return result


if __name__ == "__main__":
    # Run as a script, this file's folder (the package) is sys.path[0]: drop it so none of the
    # package's module names can shadow what numpy / tflite_micro import.
    if sys.path and Path(sys.path[0] or ".").resolve() == PROBE_SCRIPT.parent:
        sys.path.pop(0)
    sys.exit(child_main())
