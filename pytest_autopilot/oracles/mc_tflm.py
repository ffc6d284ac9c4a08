"""The TensorFlow Lite Micro checks of ``mc_tflite``: does the microcontroller runtime run the
converted model, in how small an arena, and does it compute what LiteRT computes?

TFLM parses the model (LLM output) in C++ and can crash on it, so it runs in child
processes started through the harness's sandbox (``ctx.sandbox``, a harness-side probe: not
the case's executor) -- see :mod:`pytest_autopilot.oracles.tflm_probe` for the arena search.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pytest_autopilot.core.errors import HarnessError
from pytest_autopilot.core.records import Category, Check
from pytest_autopilot.oracles import OracleContext


def tflm_checks(ctx: OracleContext, model_path: Path, rows, litert_raw, out_detail, cfg: dict, board) -> list[Check]:
    """``tflm_runs``, ``tflm_fits_ram`` (with a board) and ``tflm_matches_litert`` on a few
    held-out ``rows`` (already in the model's input type); ``litert_raw``: LiteRT's raw outputs."""
    import numpy as np

    from pytest_autopilot.executors.sandbox import Limits
    from pytest_autopilot.oracles import tflm_probe

    if ctx.sandbox is None:
        raise HarnessError(Category.HARNESS_ERROR, "mc_tflite: the TFLM probe needs ctx.sandbox (a harness bug)")
    n = min(int(cfg["rows"]), len(rows))
    pick = np.unique(np.linspace(0, len(rows) - 1, n).round().astype(int))
    budget = board.model_ram_budget if board is not None else None
    candidates = sorted({c for c in (budget, int(cfg["max_arena"])) if c})

    sandbox = ctx.sandbox
    workdir = sandbox.new_workdir(prefix="tflm-")
    limits = Limits(timeout_s=60, cpu_s=60, memory_mb=max(2048, 1024 + 4 * int(cfg["max_arena"]) // 2**20),
                    file_size_mb=16, processes=8)
    try:
        shutil.copyfile(model_path, workdir / "model.tflite")
        np.save(workdir / "inputs.npy", rows[pick])
        search = tflm_probe.find_smallest_arena(workdir / "model.tflite", workdir / "inputs.npy", workdir, candidates,
                                                runner=tflm_probe.sandbox_runner(sandbox, limits))
    finally:
        sandbox.cleanup(workdir)

    checks = []
    if search.arena is None:
        tried = f"arenas up to {max(candidates)} bytes"
        checks.append(Check("tflm_runs", False, f"TensorFlow Lite Micro cannot run the model ({tried}): {search.error}"))
        return checks
    crashed = f"; TFLM crashed at {len(search.crashes)} smaller arena(s)" if search.crashes else ""
    checks.append(Check("tflm_runs", True,
                        f"runs on TensorFlow Lite Micro; smallest working arena {search.arena} bytes "
                        f"(TFLM reports {search.reported_total} bytes allocated; {search.trials} arenas tried, "
                        f"{search.children} child process(es){crashed})"))
    if budget is not None:
        ok = search.arena <= budget
        checks.append(Check("tflm_fits_ram", ok,
                            f"needs a {search.arena}-byte tensor arena; the model RAM budget of board {board.name} is "
                            f"{budget} bytes ({board.memory.ram_kb:g} KB RAM minus {board.memory.reserved_ram_kb:g} KB reserved)"))
    tflm_out = np.array(search.outputs).reshape((len(pick), *litert_raw.shape[1:]))
    ref = litert_raw[pick]
    if np.dtype(out_detail["dtype"]).kind == "f":
        diff = float(np.abs(tflm_out.astype(np.float64) - ref.astype(np.float64)).max())
        tol = 1e-4
        unit = ""
    else:
        diff = float(np.abs(tflm_out.astype(np.int64) - ref.astype(np.int64)).max())
        tol = float(cfg["tolerance"])
        unit = " quantization step(s)"
    ok = diff <= tol
    worst = int(np.abs(tflm_out.astype(np.float64) - ref.astype(np.float64)).reshape(len(pick), -1).max(axis=1).argmax())
    checks.append(Check("tflm_matches_litert", ok,
                        f"{len(pick)} held-out rows: largest difference {diff:g}{unit} (allowed {tol:g})" if ok else
                        f"TFLM and LiteRT disagree by {diff:g}{unit} (allowed {tol:g}) on held-out row {int(pick[worst])}: "
                        f"TFLM {tflm_out[worst].tolist()}, LiteRT {ref[worst].tolist()}"))
    return checks
