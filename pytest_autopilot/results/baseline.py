"""Import the paper's published per-run records as a baseline run (a normal ``results.json``).

Source: the ``*_data_by_run.csv`` files of "Autopilots Need Parachutes" (Morabito & Wu,
Middleware 2026). Two formats (see ``notes/upstream.md``):

* ``DP_MCU_…``, ``MC_MCU_…``, ``SG_MCU_…`` — gpt-4o, 30 runs each, stages DP, MC and ArdSG;
  latency, tokens and cost per run, status ``success``/``error``; **no attempt count**.
* ``<model>_Py-CPU_Py-TPU_…`` — 120 runs each: processor ``psg`` (PyCPU-SG) / ``tpusg``
  (PyTPU-SG), parameters ``P``/``NP``, status ``success``/``failure``, ``generation_count``
  (attempts, 1-5), latency and tokens per run; no cost (local Ollama models).

How a paper run becomes a :class:`~pytest_autopilot.core.records.RunRecord`
--------------------------------------------------------------------

* ``case`` and ``stage`` are the paper's stage name (DP, MC, ArdSG, PyCPU-SG, PyTPU-SG);
  ``model_id`` is ``paper-<model>`` plus ``-p``/``-np`` for the parameter settings
  (``paper-gpt-4o``, ``paper-phi4-p``, ``paper-qwen2.5-coder-14b-np``); ``repetition`` counts
  1.. per (stage, model_id) in file order.
* Success is the paper's own verdict (``status == "success"``, any case): it was decided by the
  paper's *weak* check (exit code 0 / no error strings; remote exit code for PyTPU-SG). No strict
  oracle was ever applied, so ``strict_success`` and ``legacy_success`` both hold that verdict
  and no attempt carries a strict verdict; :func:`pytest_autopilot.results.stats.group_stats` therefore
  reports the silent-failure rate of these runs as *not measurable* (NaN), never 0.
* Run-level numbers (latency, tokens, cost) go into one run-level aggregate attempt
  (``step == stats.RUN_TOTAL_STEP``, ``number == 0``), which the statistics use as the run's
  totals and do not count as an LLM call. Per-generation numbers were never published, so
  they are not invented.
* Where ``generation_count`` is known (Python stages) the run also has that many synthetic
  ``generation`` attempts (numbers 1..N) carrying only the paper's verdict as a ``legacy``
  verdict: generations before the last failed the paper's check (the loop only regenerates on
  failure), the last one has the run's status. Their category is ``None`` (not recorded; counted
  as ``unknown`` in the taxonomy), tokens/latency/cost ``None``, prompt and code empty.
  The run's attempt count is therefore ``generation_count``.
* Microcontroller-stage runs have only the aggregate: their attempt count is unknown (``<NA>``)
  and they have no attempts curve.
* Cost is the published ``total_cost`` (USD) for gpt-4o, unknown (``None``) for Ollama models.

The provenance holds ``"baseline": {...}`` (the marker the report and ``compare`` look for, see
:func:`pytest_autopilot.results.provenance.is_baseline`),
the sha256 of every source file, and the notes above.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from pytest_autopilot.core.records import Attempt, Check, RunRecord, RunStatus, Verdict
from pytest_autopilot.core.util import finite, slug
from pytest_autopilot.results.frames import RUN_TOTAL_STEP

PAPER = "Autopilots Need Parachutes: Lessons Learned from LLM-Automated Embedded ML Pipelines (Morabito & Wu, Middleware 2026)"
MCU_FILES = {"DP_MCU_data_by_run.csv": "DP", "MC_MCU_data_by_run.csv": "MC", "SG_MCU_data_by_run.csv": "ArdSG"}
PY_PATTERN = "*_Py-CPU_Py-TPU_data_by_run.csv"
PROCESSOR_STAGE = {"psg": "PyCPU-SG", "tpusg": "PyTPU-SG"}
PARAMETERS = {"P": {"temperature": 0.1, "top_p": 0.3}, "NP": {}}  # NP: provider defaults
MCU_MODEL = "openai/gpt-4o"
SUCCESS_CRITERION = (
    "the paper's own status (weak check: exit code 0 and no error strings; remote exit code only "
    "for PyTPU-SG); no strict oracle was applied, so silent failures cannot be measured"
)
REPRESENTATION = (
    "run totals (latency, tokens, cost) in one run-level aggregate attempt (step 'run_total'); "
    "Python stages also have generation_count synthetic 'generation' attempts carrying only the "
    "paper's verdict; microcontroller stages have no attempt count"
)


class BaselineError(ValueError):
    pass


def _read(path: Path) -> pd.DataFrame:
    # UTF-8 BOM; test_date ("MM.DD") must stay text (08.10 is not 8.1)
    return pd.read_csv(path, encoding="utf-8-sig", dtype={"test_date": str})


def _status(value: Any, path: Path, row: int) -> bool:
    text = str(value).strip().lower()
    if text == "success":
        return True
    if text in ("failure", "error"):
        return False
    raise BaselineError(f"{path.name} row {row + 1}: unknown status {value!r}")


def _int(value: Any) -> int | None:
    out = finite(value)
    return None if out is None else int(round(out))


def _aggregate(latency: Any, tokens: Any, prompt: Any, completion: Any, cost: Any) -> Attempt:
    return Attempt(
        step=RUN_TOTAL_STEP, item=None, number=0, prompt_hash="", prompt="",
        extraction_note="run-level totals published by the paper; not an LLM call",
        prompt_tokens=_int(prompt), completion_tokens=_int(completion), total_tokens=_int(tokens),
        cost_usd=finite(cost), latency_s=finite(latency),
    )


def _generations(count: int, success: bool) -> list[Attempt]:
    out = []
    for number in range(1, count + 1):
        passed = success and number == count
        detail = ("the paper's status for the run: success" if passed else
                  f"generation {number} of {count} failed the paper's check" if number < count else
                  "the paper's status for the run: failure")
        out.append(Attempt(
            step="generation", item=None, number=number, prompt_hash="", prompt="",
            extraction_note="synthetic: the paper published only the number of generations",
            legacy=Verdict("paper_weak_check", passed, [Check("paper_status", passed, detail)],
                           None),
        ))
    return out


def _record(*, source: str, stage: str, model_id: str, model: str, params: dict, repetition: int,
            success: bool, attempts: list[Attempt], started_at: str | None) -> RunRecord:
    return RunRecord(
        nodeid=f"paper-records/{source}::{stage}[{model_id}-r{repetition:02d}]",
        case=stage, stage=stage, model_id=model_id, model=model, params=dict(params),
        repetition=repetition, status=RunStatus.SUCCESS if success else RunStatus.FAILURE,
        strict_success=success, legacy_success=success, attempts=attempts, scripted=False,
        error=None if success else "paper status: failure (cause not published)",
        started_at=started_at, worker="paper", cassette=None,
    )


def _mcu(path: Path, stage: str) -> list[RunRecord]:
    frame = _read(path)
    model_id = "paper-" + slug(MCU_MODEL.split("/", 1)[1])
    out = []
    for i, row in enumerate(frame.to_dict(orient="records")):
        success = _status(row["status"], path, i)
        out.append(_record(
            source=path.name, stage=stage, model_id=model_id, model=MCU_MODEL, params={},
            repetition=i + 1, success=success, started_at=None,
            attempts=[_aggregate(row["latency"], row["total_tokens"], row.get("prompt_tokens"),
                                 row.get("completion_tokens"), row.get("total_cost"))],
        ))
    return out


_CATEGORY = re.compile(r"^(?P<model>.+)_(?P<proc>psg|tpusg)_(?P<params>P|NP)$")


def _python(path: Path) -> list[RunRecord]:
    frame = _read(path)
    out = []
    reps: dict[tuple[str, str], int] = {}
    for i, row in enumerate(frame.to_dict(orient="records")):
        proc = str(row["processor"]).strip()
        params = str(row["parameters"]).strip()
        if proc not in PROCESSOR_STAGE or params not in PARAMETERS:
            raise BaselineError(f"{path.name} row {i + 1}: processor {proc!r} / parameters {params!r}")
        # the full Ollama tag is in `category` ("qwen2.5-coder:14b_psg_P"); `model` is a short name
        match = _CATEGORY.match(str(row.get("category", "")).strip())
        name = match["model"] if match else str(row["model"]).strip()
        stage = PROCESSOR_STAGE[proc]
        model_id = f"paper-{slug(name)}-{params.lower()}"
        reps[(stage, model_id)] = rep = reps.get((stage, model_id), 0) + 1
        success = _status(row["status"], path, i)
        count = _int(row["generation_count"])
        if count is None or count < 1:
            raise BaselineError(f"{path.name} row {i + 1}: generation_count {row['generation_count']!r}")
        ts = finite(row.get("timestamp"))
        started = (datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")
                   if ts is not None else None)
        out.append(_record(
            source=path.name, stage=stage, model_id=model_id, model=f"ollama/{name}",
            params={**PARAMETERS[params], "paper_parameters": params}, repetition=rep,
            success=success, started_at=started,
            attempts=[_aggregate(row["latency"], row["total_tokens"], row.get("prompt_tokens"),
                                 row.get("completion_tokens"), None),
                      *_generations(count, success)],
        ))
    return out


def import_paper(src_dir: Path) -> tuple[list[RunRecord], dict[str, Any]]:
    """Read the paper's CSV files from ``src_dir``: (records, provenance)."""
    src_dir = Path(src_dir)
    if not src_dir.is_dir():
        raise BaselineError(f"{src_dir}: not a directory")
    records: list[RunRecord] = []
    files: dict[str, str] = {}
    for name, stage in MCU_FILES.items():
        path = src_dir / name
        if path.is_file():
            records += _mcu(path, stage)
            files[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    for path in sorted(src_dir.glob(PY_PATTERN)):
        records += _python(path)
        files[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    if not records:
        raise BaselineError(f"{src_dir}: none of the paper's *_data_by_run.csv files found")
    models = {r.model_id: {"model": r.model, "params": r.params, "scripted": False} for r in records}
    provenance = {
        "run_id": "paper-baseline",
        "baseline": {
            "source": "paper",
            "paper": PAPER,
            "files": files,
            "success_criterion": SUCCESS_CRITERION,
            "representation": REPRESENTATION,
        },
        "imported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "models": models,
        "scripted_standin": False,
    }
    return records, provenance


def import_to(src_dir: Path, out_dir: Path, html: bool = False) -> dict[str, Path]:
    """Import ``src_dir`` and write a normal report folder (results.json, CSVs, stats.json) to ``out_dir``."""
    from pytest_autopilot.results.report import write_report

    records, provenance = import_paper(src_dir)
    return write_report(Path(out_dir), records, provenance, complete=True, extended=True, html=html)
