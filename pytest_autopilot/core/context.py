"""What the runs of one session share, handed explicitly to the runner, the executors' factories
and provenance. Only the pytest glue holds the session object (``session.py``); below it a
part reads a ``RunContext``: the settings, the registries, the shared resources and the facts
of the session (its id, folders, workers), never the session itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from pytest_autopilot.core.util import relative_to


@dataclass
class RunContext:
    settings: Any  # settings.Settings: .get(name), .for_case(name, case spec), .explicit(name)
    root: Path  # node ids and the paths a message shows are relative to it
    prompts_dir: Path
    hardware_dir: Path
    report_dir: Path
    run_id: str
    worker_id: str  # "master", or the xdist worker's id
    host: str
    started_at: str
    args: list[str]  # the command line, for provenance
    registries: Any  # loop.registries.Registries: executors, oracles, toolchains, legacy checks, repair strategies
    cassettes: Any  # llm.cassettes.Cassettes
    local: Any  # llm.local_provider.LocalServers
    shared: Any  # executors.SharedResources: warm servers, SSH connections, ...; closed at session end
    # the lazily built parts by name ("sandbox", "journal", "standin", "human_server"): collection
    # stays cheap, a part is built when a run first needs it
    parts: Mapping[str, Callable[[], Any]] = field(default_factory=dict)
    announce: Callable[[str], None] = print  # a line on the terminal while a test runs (the human baseline)
    shard: tuple[int, int] | None = None
    rescore_dir: Path | None = None
    # filled while the session runs, read by provenance at its end
    cassettes_at_start: dict[str, str] = field(default_factory=dict)  # cassette -> sha256 before any run
    worker_hosts: dict[str, dict[str, Any]] = field(default_factory=dict)  # gateway id -> its worker
    cases: dict[str, Any] = field(default_factory=dict)  # case file (relative) -> the case collection loaded

    def part(self, name: str) -> Any:
        return self.parts[name]()

    def relative(self, path: Path) -> str:
        return relative_to(self.root, path)
