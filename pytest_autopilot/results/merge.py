"""Merging the results of shards (or of machines) into one run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_autopilot.core.records import RunRecord
from pytest_autopilot.results.report import load_results, write_report


class MergeError(Exception):
    """Inputs that cannot be merged (one-line message)."""


def merge_results(run_dirs: list[Path], out_dir: Path) -> dict[str, Path]:
    """Union of the runs of several result folders; the same run in two of them is an error
    (shards never overlap), so nothing is silently dropped or counted twice."""
    records: dict[str, RunRecord] = {}
    sources: dict[str, str] = {}
    provenances: list[dict[str, Any]] = []
    complete = True
    for run_dir in run_dirs:
        path = run_dir / "results.json"
        if not path.is_file():
            raise MergeError(f"{run_dir}: no results.json (is it a reports/<run-id>/ folder?)")
        runs, provenance, was_complete = load_results(path)
        complete &= was_complete
        provenances.append(provenance)
        for record in runs:
            if record.nodeid in records:
                raise MergeError(f"{record.nodeid} is in both {sources[record.nodeid]} and {run_dir}; "
                                 f"merge disjoint shards only")
            records[record.nodeid] = record
            sources[record.nodeid] = str(run_dir)
    merged = {**provenances[0], "merged_from": [str(d) for d in run_dirs],
              "shards": [p.get("shard") for p in provenances],
              "worker_hosts": [p.get("worker_hosts") for p in provenances]} if provenances else {}  # per merged_from
    return write_report(out_dir, [records[k] for k in sorted(records)], merged, complete=complete)
