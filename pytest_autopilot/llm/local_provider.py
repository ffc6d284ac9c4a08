"""The ``local`` provider: ``--autopilot-llm local/<name>`` or ``local/<path.gguf>``.

One llama.cpp server per machine and model for the session. The controller starts it when
the session may record (any record mode but ``none``) and hands its URL to xdist workers
through ``workerinput``; replaying (``--record-mode=none``) needs neither the server nor the
model file. A server that died mid-run is restarted by the next run that needs it (the run
that hit the failure records ``llm_api_error``). At session end the controller stops it.
"""

from __future__ import annotations

import os

from pytest_autopilot.core.errors import HarnessError
from pytest_autopilot.llm.llama_server import LlamaServer
from pytest_autopilot.llm.local_models import LocalModelError, resolve
from pytest_autopilot.llm.profiles import LOCAL_DEFAULT_CONTEXT, LLMSpec

WORKERINPUT_KEY = "autopilot_local_servers"


class LocalServers:
    """The session's servers by model string; problems are kept and reported by the runs that need them."""

    def __init__(self, state_dir, *, port: int = 0, threads: int = 0, handed_over: dict | None = None):
        self.state_dir = state_dir
        self.port = port
        self.threads = threads or os.cpu_count() or 1
        self.urls: dict[str, str] = dict(handed_over or {})
        self.servers: dict[str, LlamaServer] = {}
        self.problems: dict[str, HarnessError] = {}
        self.models: dict[str, dict] = {}  # for provenance: model string -> path, sha256, general.name

    def start(self, specs: list[LLMSpec]) -> None:
        """Start every local model's server now (the controller, before workers exist)."""
        for spec in specs:
            if spec.is_local and spec.model not in self.urls:
                try:
                    self.url(spec)
                except HarnessError as exc:
                    self.problems[spec.model] = exc

    def url(self, spec: LLMSpec) -> str:
        if spec.model in self.problems:
            raise self.problems[spec.model]
        # no health request here: a busy server answers it only after another worker's generation
        self.urls[spec.model] = self._server(spec).url()
        return self.urls[spec.model]

    def _server(self, spec: LLMSpec) -> LlamaServer:
        if spec.model not in self.servers:
            try:
                model = resolve(spec.model)
            except LocalModelError as exc:
                self.problems[spec.model] = exc
                raise
            self.models[spec.model] = {"path": str(model.path), "sha256": model.sha256,
                                       "general_name": model.general_name, "n_ctx": spec.context_window}
            self.servers[spec.model] = LlamaServer(model, self.state_dir, n_ctx=spec.context_window or LOCAL_DEFAULT_CONTEXT,
                                                   n_threads=self.threads, port=self.port)
        return self.servers[spec.model]

    def close(self, controller: bool) -> None:
        for server in self.servers.values():
            server.stop() if controller else server.close()
