"""A busy local model server is not restarted (llm/llama_server.py). llama-cpp-python's server takes
one request at a time, so while it generates for one xdist worker even ``GET /v1/models`` waits; a
worker that took that wait for a dead server killed it and failed the other worker's request
(recordings stopped with ``llm_api_error: ... Connection error``). Here a real HTTP server stands
in for the busy one, because a real model cannot be made reliably busy at the right moment: its
``/v1/models`` answers only after 5 s. A dead server (gone, or a zombie not yet reaped) is still
replaced."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from pytest_autopilot.llm.llama_server import LlamaServer, alive, free_port

SLOW_SERVER = """\
import http.server, sys, time

class Busy(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(5)  # behind another worker's generation
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"data": []}')

http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Busy).serve_forever()
"""


@pytest.fixture
def busy_server(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SLOW_SERVER, str(port)], start_new_session=True)
    yield proc, f"http://127.0.0.1:{port}/v1"
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _server(state_dir: Path, pid: int, url: str) -> LlamaServer:
    model = SimpleNamespace(alias="busy", path=Path("unused.gguf"), sha256="0" * 64)
    server = LlamaServer(model, state_dir, n_ctx=512, n_threads=1)
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "llama-busy.json").write_text(json.dumps({"pid": pid, "url": url}))
    return server


def test_a_live_server_that_answers_late_is_used_not_killed(busy_server, tmp_path):
    proc, url = busy_server
    assert _server(tmp_path / "state", proc.pid, url).url() == url
    assert proc.poll() is None and alive(proc.pid)  # still serving the other worker


def test_a_dead_or_zombie_server_is_not_alive(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 60
    while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline, "the child never exited"
        time.sleep(0.01)  # until it has exited, not yet reaped: a server that died under its starter
    assert not alive(child.pid)
    child.wait()
    assert not alive(child.pid)
