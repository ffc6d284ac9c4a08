"""The stage table: the one place that knows the paper's five stages and the end-to-end pipeline
of them. A new stage is one entry here plus its oracle; markers, report order, the default
executor and the legacy (paper) check all come from it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    name: str  # as case files spell it (``stage: DP``)
    marker: str  # pytest marker put on every item of the stage
    order: int  # position in reports
    legacy: str  # the paper's success check for its steps: a registered legacy check (oracles.BUILTIN_LEGACY)
    executor: str  # executor of a case that names none
    description: str


STAGES: dict[str, Stage] = {s.name: s for s in (
    Stage("DP", "dp", 1, "exit_code", "python", "pandas data processing"),
    Stage("MC", "mc", 2, "exit_code", "python", "Keras to TFLite int8 model conversion"),
    Stage("ArdSG", "ardsg", 3, "compiles", "arduino", "Arduino sketch generation and build"),
    Stage("PyCPU-SG", "pycpu_sg", 4, "exit_code", "python", "Python TFLite detection on a CPU board"),
    Stage("PyTPU-SG", "pytpu_sg", 5, "exit_code", "ssh", "Python TFLite detection on a Coral over SSH"),
    # not one of the paper's: its stages chained, each step on its own executor (steps[].executor)
    Stage("Pipeline", "pipeline", 6, "exit_code", "python",
          "stages chained end to end, each step's artifact the next one's input"),
)}


def stage(name: str) -> Stage:
    try:
        return STAGES[name]
    except KeyError:
        raise KeyError(f"unknown stage {name!r}; known: {', '.join(STAGES)}") from None


def report_order(name: str) -> tuple[int, str]:
    """Sort key putting stages in the paper's order and unknown ones (imports) last."""
    known = STAGES.get(str(name))
    return (known.order if known else len(STAGES) + 1, str(name))
