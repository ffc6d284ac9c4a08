"""Provenance of a sweep: versions, case and prompt hashes, models, the sha256 of every
cassette replayed, git commit, timestamps, so every number in a report can be traced to what
produced it; and what a provenance says about the runs (:func:`is_baseline`)."""

from __future__ import annotations

import platform
import sys
from datetime import datetime, timezone
from importlib import metadata
from typing import Any

from pytest_autopilot.cases.spec import load_case
from pytest_autopilot.executors import environments
from pytest_autopilot.llm.local_models import NAMED
from pytest_autopilot.llm.profiles import LOCAL_PREFIX
from pytest_autopilot.results.workers import git_commit, this_process

PROVENANCE_DISTS = ("pytest-autopilot", "pytest", "pytest-xdist", "litellm", "vcrpy", "pandas", "numpy",
                    "scipy", "pydantic", "jinja2")


def is_baseline(provenance: dict[str, Any] | None) -> bool:
    """Whether a results.json provenance marks imported baseline runs (``"baseline": {...}``,
    written by :mod:`pytest_autopilot.results.baseline`)."""
    return bool((provenance or {}).get("baseline"))


def provenance(session, records) -> dict[str, Any]:
    versions = {}
    for dist in PROVENANCE_DISTS:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    case_files = sorted({r.nodeid.split("::")[0] for r in records})
    hashes: dict[str, Any] = {}
    cases = {}
    for rel in case_files:
        try:
            cases[rel] = load_case(session.root / rel, session.prompts_dir, session.hardware_dir)
            hashes[rel] = cases[rel].file_hashes()
        except Exception as exc:  # a case edited mid-run: say so rather than lose the report
            hashes[rel] = f"unavailable: {exc}"
    models = {r.model_id: {"model": r.model, "params": r.params, "scripted": r.scripted, **_local_model(session, r.model)}
              for r in records}
    extra = {"shard": f"{session.shard[0]}/{session.shard[1]}" if session.shard else None,
             "resumed": bool(session.settings.get("resume")),
             "rescored_archive": session.relative(session.rescore_dir) if session.rescore_dir else None}
    return {
        "run_id": session.run_id,
        "started_at": session.started_at,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": versions,
        "toolchains": {"python": sys.version.split()[0]},
        "git_commit": git_commit(session.root),
        "args": list(session.config.invocation_params.args),
        "record_mode": session.settings.get("record_mode"),
        "models": models,
        "scripted_standin": any(m["scripted"] for m in models.values()),
        "case_hashes": hashes,
        # per case: the software its programs ran with (a declared environment's pip freeze) and no rewriting
        "software": environments.provenance(cases),
        # cassettes that existed when the session started are the ones its runs replayed
        "replayed_cassettes": dict(sorted((r.cassette, session.cassettes_at_start[r.cassette]) for r in records
                                          if r.cassette in session.cassettes_at_start)),
        "workers": str(len(session.worker_hosts) or 1),
        # per xdist worker (or the one process): host, checkout, commit, journal, and its gateway; a worker
        # elsewhere keeps its journal and the cassettes it recorded in its checkout (the runs name host and cassette)
        "worker_hosts": dict(sorted(session.worker_hosts.items())) or {session.worker_id: this_process(session.root, session.journal_path)},
        **extra,
    }


def _local_model(session, model: str) -> dict[str, Any]:
    """For ``local/`` models: the GGUF's sha256 (from the server's verified file, or for a replay
    of a named model from its pinned digest) and the context size."""
    if not model.startswith(LOCAL_PREFIX):
        return {}
    served = session.local.models.get(model)
    if served:
        return {"gguf_sha256": served["sha256"], "gguf_name": served["general_name"], "n_ctx": served["n_ctx"]}
    named = NAMED.get(model[len(LOCAL_PREFIX):])
    return {"gguf_sha256": named.sha256 if named else None, "gguf_name": named.general_name if named else None}
