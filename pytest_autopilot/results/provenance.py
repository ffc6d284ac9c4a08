"""Provenance of a sweep: versions, case and prompt hashes, models, the sha256 of every
cassette replayed, git commit, timestamps, each process's host and checkout, so every number in a report can be traced to what
produced it; and what a provenance says about the runs (:func:`is_baseline`)."""

from __future__ import annotations

import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from pytest_autopilot.cases.spec import load_case
from pytest_autopilot.core.context import RunContext
from pytest_autopilot.executors import environments
from pytest_autopilot.llm.local_models import NAMED
from pytest_autopilot.llm.profiles import LOCAL_PREFIX

PROVENANCE_DISTS = ("pytest-autopilot", "pytest", "pytest-xdist", "litellm", "vcrpy", "pandas", "numpy",
                    "scipy", "pydantic", "jinja2")


def is_baseline(provenance: dict[str, Any] | None) -> bool:
    """Whether a results.json provenance marks imported baseline runs (``"baseline": {...}``,
    written by :mod:`pytest_autopilot.results.baseline`)."""
    return bool((provenance or {}).get("baseline"))


def provenance(ctx: RunContext, records, journal: Path | None = None) -> dict[str, Any]:
    """``journal``: this process's journal, when it kept one."""
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
        try:  # the case as collected; under xdist the controller collected none: loaded here, once
            cases[rel] = ctx.cases.get(rel) or load_case(ctx.root / rel, ctx.prompts_dir, ctx.hardware_dir)
            hashes[rel] = cases[rel].file_hashes()
        except Exception as exc:  # a case edited mid-run: say so rather than lose the report
            hashes[rel] = f"unavailable: {exc}"
    models = {r.model_id: {"model": r.model, "params": r.params, "scripted": r.scripted, "human": r.human, **_local_model(ctx, r.model)}
              for r in records}
    extra = {"shard": f"{ctx.shard[0]}/{ctx.shard[1]}" if ctx.shard else None,
             "resumed": bool(ctx.settings.get("resume")),
             "rescored_archive": ctx.relative(ctx.rescore_dir) if ctx.rescore_dir else None}
    return {
        "run_id": ctx.run_id,
        "started_at": ctx.started_at,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": versions,
        "toolchains": {"python": sys.version.split()[0]},
        "git_commit": git_commit(ctx.root),
        "args": list(ctx.args),
        "record_mode": ctx.settings.get("record_mode"),
        "models": models,
        "scripted_standin": any(m["scripted"] for m in models.values()),
        "human_baseline": any(m["human"] for m in models.values()),
        "case_hashes": hashes,
        # per case: the software its programs ran with (a declared environment's pip freeze) and no rewriting
        "software": environments.provenance(cases),
        # cassettes that existed when the session started are the ones its runs replayed
        "replayed_cassettes": dict(sorted((r.cassette, ctx.cassettes_at_start[r.cassette]) for r in records
                                          if r.cassette in ctx.cassettes_at_start)),
        "workers": str(len(ctx.worker_hosts) or 1),
        # per xdist worker (or the one process): host, checkout, commit, journal, and its gateway; a worker
        # elsewhere keeps its journal and the cassettes it recorded in its checkout (the runs name host and cassette)
        "worker_hosts": dict(sorted(ctx.worker_hosts.items())) or {ctx.worker_id: this_process(ctx.root, journal)},
        **extra,
    }


def git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def this_process(root: Path, journal: Path | None) -> dict[str, Any]:
    """This process's host, checkout, commit and journal (None: it journalled nothing)."""
    return {"host": socket.gethostname(), "root": str(root), "git_commit": git_commit(root),
            "journal": str(journal) if journal else None}


def _local_model(ctx: RunContext, model: str) -> dict[str, Any]:
    """For ``local/`` models: the GGUF's sha256 (from the server's verified file, or for a replay
    of a named model from its pinned digest) and the context size."""
    if not model.startswith(LOCAL_PREFIX):
        return {}
    served = ctx.local.models.get(model)
    if served:
        return {"gguf_sha256": served["sha256"], "gguf_name": served["general_name"], "n_ctx": served["n_ctx"]}
    named = NAMED.get(model[len(LOCAL_PREFIX):])
    return {"gguf_sha256": named.sha256 if named else None, "gguf_name": named.general_name if named else None}
