"""ArdSG's graded metrics: the firmware oracle reports the build's flash and RAM bytes beside its
verdict (simavr's command line counts no cycles, so there is no cycles-per-inference metric).
The helpers and fixtures are the firmware tests' own (imported, not copied)."""

from __future__ import annotations

from pathlib import Path

from test_firmware import CASES, _code, _explain, _judge, _view, core_cache, needs_avr, sandbox  # noqa: F401

from pytest_autopilot.core.records import ExecResult
from pytest_autopilot.oracles import OracleContext
from pytest_autopilot.oracles import ardsg as ardsg_oracles


def test_flash_and_ram_bytes_are_reported_from_the_build():
    view = _view("uno_colour_sim")
    execution = ExecResult(0, "", "", 1.0, isolation={"build": {"returncode": 0, "tool": "x", "flash_bytes": 5120,
                                                                "ram_bytes": 700}, "phase": "build"})
    ctx = OracleContext(workdir=Path("."), execution=execution, answer="",
                        params=dict(view.step("sketch")["oracle"]["params"]), case_dir=CASES, assets=view.assets,
                        workspace=view.workspace, board=view.board)
    verdict = ardsg_oracles.ardsg_firmware(ctx)
    assert not verdict.passed  # built but not run
    assert verdict.metrics == {"flash_bytes": 5120.0, "ram_bytes": 700.0}


@needs_avr
def test_reference_sketch_reports_its_real_sizes(sandbox, core_cache):
    view = _view("uno_colour_sim")
    reference = CASES / view.raw["solutions"]["reference"]["sketch"]
    execution, verdict = _judge(view, sandbox, core_cache, "sketch", _code(reference, view.step("sketch")["language"]))
    assert verdict.passed, _explain(verdict)
    build = execution.isolation["build"]
    assert verdict.metrics == {"flash_bytes": float(build["flash_bytes"]), "ram_bytes": float(build["ram_bytes"])}
    assert 0 < verdict.metrics["flash_bytes"] <= view.board.model_flash_budget
