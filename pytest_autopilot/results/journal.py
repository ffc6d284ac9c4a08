"""Crash-safe results: one append-only JSONL journal per process (xdist worker), flushed and
fsynced per record, so a worker that dies leaves every completed run on disk and its
interrupted run recognisable (a ``start`` without a ``run``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pytest_autopilot.core.records import Attempt, RunRecord, RunStatus, attempt_from_dict


class Journal:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = open(path, "a", encoding="utf-8")

    def _write(self, entry: dict[str, Any]) -> None:
        self._file.write(json.dumps(entry, default=str, allow_nan=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def start(self, stub: RunRecord) -> None:
        self._write({"type": "start", "run": stub.to_dict()})

    def attempt(self, nodeid: str, attempt: Attempt) -> None:
        from dataclasses import asdict

        self._write({"type": "attempt", "nodeid": nodeid, "attempt": asdict(attempt)})

    def finish(self, record: RunRecord) -> None:
        self._write({"type": "run", "run": record.to_dict()})

    def crashed(self, nodeid: str) -> None:
        """Its worker died during the run: it stays crashed whatever stops the session later."""
        self._write({"type": "crashed", "nodeid": nodeid})

    def close(self) -> None:
        self._file.close()


def read_journals(folder: Path, unfinished_status: str = RunStatus.CRASHED) -> dict[str, RunRecord]:
    """Every run found in the folder's journals, keyed by nodeid; unfinished runs get
    ``unfinished_status`` and keep the attempts journalled before the stop."""
    started: dict[str, RunRecord] = {}
    attempts: dict[str, list[Attempt]] = {}
    finished: dict[str, RunRecord] = {}
    crashed: set[str] = set()
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line from a killed process
            kind = entry.get("type")
            if kind == "start":
                record = RunRecord.from_dict(entry["run"])
                started[record.nodeid] = record
                attempts[record.nodeid] = []
            elif kind == "attempt":
                attempts.setdefault(entry["nodeid"], []).append(attempt_from_dict(entry["attempt"]))
            elif kind == "run":
                record = RunRecord.from_dict(entry["run"])
                finished[record.nodeid] = record
            elif kind == "crashed":
                crashed.add(entry["nodeid"])
    for nodeid, stub in started.items():
        if nodeid not in finished:
            status = RunStatus.CRASHED if nodeid in crashed else unfinished_status
            stub.status = status
            stub.attempts = attempts.get(nodeid, [])
            stub.error = f"the run did not finish ({status}); {len(stub.attempts)} attempt(s) journalled"
            finished[nodeid] = stub
    return finished
