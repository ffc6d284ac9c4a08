"""The local provider live: the real llama.cpp server (llama-cpp-python) with the real 0.5B model
on the toy case. Generation is bounded (max_tokens, one or two attempts) so each run takes
seconds. The test command installs the extra and the model; elsewhere these tests skip."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pytest_autopilot.llm import local_models

pytest.importorskip("llama_cpp.server", reason='needs the local extra: bash scripts/setup.sh --local')
MODEL = local_models.model_file("qwen2.5-coder-0.5b")
if not MODEL.is_file():
    pytest.skip("the 0.5B model is not installed: pytest-autopilot models --install qwen2.5-coder-0.5b",
                allow_module_level=True)

DEADLINE_S = 600  # a generous bound for a whole bounded session on a loaded 2-core machine



DYING_CONFTEST = """\
import json, os, signal
from pathlib import Path
from pytest_autopilot.core.records import Check, Verdict

FAULT = os.environ.get("AUTOPILOT_TEST_FAULT")
FLAG = Path(os.environ.get("AUTOPILOT_TEST_FLAG", "/nonexistent"))


def pytest_autopilot_register(registry):
    registry.oracle("toy_answer", toy_answer)


def first_time() -> bool:
    if FLAG.exists():
        return False
    FLAG.write_text("done")
    return True


def toy_answer(ctx):
    path = ctx.workdir / "out.txt"
    ok = path.is_file() and path.read_text().strip() == "42"
    return Verdict.from_checks("toy_answer", [Check("value", ok, "out.txt should hold 42")])


if FAULT in ("kill-server", "kill-worker"):  # right after the first answer, whatever the model wrote
    from pytest_autopilot.llm import client

    answer_once = client.LLMClient.__call__

    def answer_then_crash(self, messages, meta):
        answer = answer_once(self, messages, meta)
        if first_time():
            if FAULT == "kill-worker":  # the worker dies mid-run
                os._exit(3)
            for state in Path("reports").glob("*/servers/*.json"):  # the server crashes (a real SIGKILL)
                os.killpg(json.loads(state.read_text())["pid"], signal.SIGKILL)
        return answer

    client.LLMClient.__call__ = answer_then_crash
"""


class Project(type(Path())):
    """The project folder, knowing its model string and its model link."""

    llm: str
    link: Path


@pytest.fixture
def local_project(toy_project, tmp_path_factory):
    """The toy project with its own link to the 0.5B model, so its server is told apart by path."""
    link = tmp_path_factory.mktemp("model") / "toy-qwen.gguf"
    link.symlink_to(MODEL)
    (toy_project / "conftest.py").write_text(DYING_CONFTEST)
    case = toy_project / "cases/toy/answer.yaml"
    case.write_text(case.read_text().replace("repair: {max_attempts: 2}", "repair: {max_attempts: 1}"))
    models = {"models": {f"local/{link}": {"context_window": 2048, "profiles": {"t": {"max_tokens": 64, "temperature": 0.7}}}}}
    (toy_project / "autopilot-models.yaml").write_text(yaml.safe_dump(models))
    project = Project(toy_project)
    project.llm, project.link = f"local/{link}@t", link
    return project


def _pytest(project: Path, *args: str, env: dict | None = None, run_id: str = "live") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "cases", "--autopilot-llm", project.llm,
                           "--autopilot-run-id", run_id, "--autopilot-local-threads", "1", "-p", "no:cacheprovider", *args],
                          cwd=project, capture_output=True, text=True, timeout=DEADLINE_S, env={**os.environ, **(env or {})})


def _servers_of(project: Path) -> list[str]:
    out = subprocess.run(["pgrep", "-af", "llama_cpp.server"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if str(project.link) in line]


def _runs(project: Path, run_id: str = "live") -> list[dict]:
    return json.loads((project / f"reports/{run_id}/results.json").read_text())["runs"]


def _bodies(cassette: Path) -> list[dict]:
    return [json.loads(i["request"]["body"]) for i in yaml.safe_load(cassette.read_text())["interactions"]]


def _answers(cassette: Path) -> list[str]:
    return [json.loads(i["response"]["body"]["string"])["choices"][0]["message"]["content"]
            for i in yaml.safe_load(cassette.read_text())["interactions"]]


def test_smoke_the_server_starts_a_run_records_and_the_same_command_replays_it_offline(local_project):
    """The one live test of the default run: the real server answers a 1-attempt run that is
    recorded, and the same command with --record-mode none replays it from the cassette with no
    server started."""
    for run_id, mode in (("record", "all"), ("replay", "none")):
        out = _pytest(local_project, "-p", "no:xdist", "--record-mode", mode, run_id=run_id)
        assert out.returncode in (0, 1), out.stdout[-3000:]
    recorded, replayed = _runs(local_project, "record"), _runs(local_project, "replay")
    assert len(recorded) == 1 and recorded[0]["status"] in ("success", "failure"), recorded
    assert len(recorded[0]["attempts"]) == 1 and recorded[0]["model_id"] == "local-toy-qwen-t"
    cassette = local_project / "cassettes/toy/answer/local-toy-qwen-t-r01.yaml"
    assert len(_answers(cassette)) == 1
    assert _verdicts(replayed) == _verdicts(recorded)
    assert (local_project / "reports/record/servers").is_dir()  # the first session started the server
    assert not (local_project / "reports/replay/servers").exists()  # the replay needed none
    assert _servers_of(local_project) == []


def _verdicts(runs: list[dict]) -> list[tuple]:
    return [(r["nodeid"], r["status"], r["strict_success"], len(r["attempts"])) for r in runs]


@pytest.mark.live
def test_one_server_for_two_workers_seeded_reproducible_and_gone_afterwards(local_project):
    out = _pytest(local_project, "-n", "2", "--autopilot-runs", "2", "--record-mode", "all")
    assert out.returncode in (0, 1), out.stdout[-3000:]
    runs = _runs(local_project)
    assert sorted(r["worker"] for r in runs) == ["gw0", "gw1"]
    assert all(r["status"] in ("success", "failure") and r["model_id"] == "local-toy-qwen-t" for r in runs), runs
    logs = list((local_project / "reports/live/servers").glob("*.log"))
    assert len(logs) == 1 and logs[0].read_text().count("Uvicorn running on") == 1  # one server for both workers
    assert not list((local_project / "reports/live/servers").glob("*.json"))  # its address forgotten at the end
    assert _servers_of(local_project) == []
    provenance = json.loads((local_project / "reports/live/results.json").read_text())["provenance"]
    assert provenance["models"]["local-toy-qwen-t"]["gguf_sha256"] == local_models.NAMED["qwen2.5-coder-0.5b"].sha256
    cassettes = local_project / "cassettes/toy/answer"
    first = {n: _bodies(cassettes / f"local-toy-qwen-t-r0{n}.yaml")[0] for n in (1, 2)}
    assert first[1]["model"] == first[2]["model"] == "toy-qwen"  # the id, never the file's path
    assert (first[1]["seed"], first[2]["seed"]) == (1, 2)  # repetition r samples with base 0 + r
    # A re-recording reproduces the answers. Compared between two sessions that send the same
    # prompts in the same order: the server reuses the previous prompt's cached prefix, so what
    # another worker asked just before changes the float sums (and can change a token).
    answers = []
    for run_id in ("again", "again2"):
        again = _pytest(local_project, "-p", "no:xdist", "-k", "r01", "--autopilot-runs", "2", "--record-mode", "all",
                        run_id=run_id)
        assert again.returncode in (0, 1), again.stdout[-3000:]
        assert _bodies(cassettes / "local-toy-qwen-t-r01.yaml")[0]["seed"] == 1
        answers.append(_answers(cassettes / "local-toy-qwen-t-r01.yaml"))
    assert answers[0] == answers[1]


@pytest.mark.live
def test_no_server_is_left_after_a_killed_worker_or_ctrl_c(local_project, tmp_path, interruptible):
    out = _pytest(local_project, "-n", "2", "--autopilot-runs", "2", "--record-mode", "all",
                  env={"AUTOPILOT_TEST_FAULT": "kill-worker", "AUTOPILOT_TEST_FLAG": str(tmp_path / "killed")})
    assert "crashed" in out.stdout, out.stdout[-3000:]
    assert _servers_of(local_project) == []

    proc = subprocess.Popen([sys.executable, "-m", "pytest", "cases", "--autopilot-llm", local_project.llm,
                             "--autopilot-runs", "3", "--record-mode", "all", "--autopilot-run-id", "intr",
                             "-p", "no:xdist", "-p", "no:cacheprovider"],
                            cwd=local_project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=interruptible)
    state_dir = local_project / "reports/intr/servers"
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline and not list(state_dir.glob("*.json")):
        time.sleep(0.2)
    assert _servers_of(local_project), "the server should be running now"
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=DEADLINE_S)
    assert _servers_of(local_project) == []


@pytest.mark.live
def test_a_server_that_dies_mid_run_fails_that_run_and_the_next_restarts_it(local_project, tmp_path):
    case = local_project / "cases/toy/answer.yaml"
    case.write_text(case.read_text().replace("repair: {max_attempts: 1}", "repair: {max_attempts: 3}")
                    .replace("oracle: {name: toy_answer, params: {expected: \"42\"}}", "oracle: {name: never}"))
    (local_project / "conftest.py").write_text(DYING_CONFTEST + """
def never(ctx):  # every answer fails, so run 1 asks again after the crash
    return Verdict.from_checks("never", [Check("never", False, "keep trying")])

def pytest_autopilot_configure(config, session):
    session.registries.oracle("never", never)
""")
    out = _pytest(local_project, "-p", "no:xdist", "--autopilot-runs", "2", "--record-mode", "all",
                  env={"AUTOPILOT_TEST_FAULT": "kill-server", "AUTOPILOT_TEST_FLAG": str(tmp_path / "killed")})
    by_rep = {r["repetition"]: r for r in _runs(local_project)}
    assert by_rep[1]["status"] == "error" and by_rep[1]["error"].startswith("llm_api_error: LLM API error"), by_rep[1]
    assert "\n" not in by_rep[1]["error"] and len(by_rep[1]["attempts"]) == 2
    assert by_rep[2]["status"] == "failure" and len(by_rep[2]["attempts"]) == 3, (by_rep[2], out.stdout[-2000:])
    (log,) = (local_project / "reports/live/servers").glob("*.log")
    assert log.read_text().count("Uvicorn running on") == 2  # restarted for run 2
    assert _servers_of(local_project) == []


@pytest.mark.live
def test_faults_are_one_line_errors_and_the_sweep_goes_on(local_project, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = _pytest(local_project, "-p", "no:xdist", "--record-mode", "all", "--autopilot-local-port", str(port),
                      "--autopilot-llm", "scripted/standin")
    runs = {r["model_id"]: r for r in _runs(local_project)}
    assert runs["local-toy-qwen-t"]["status"] == "error"
    assert f"port {port} for the local model server is in use" in runs["local-toy-qwen-t"]["error"]
    assert runs["scripted-standin"]["status"] in ("success", "failure"), out.stdout[-2000:]  # the others still run

    (tmp_path / "corrupt.gguf").write_bytes(b"GGUF" + b"\0" * 64)
    for n, (model, message) in enumerate(((f"local/{tmp_path}/corrupt.gguf", "corrupt GGUF"),
                                          ("local/qwen9-coder", "unknown local model 'qwen9-coder'"))):
        out = subprocess.run([sys.executable, "-m", "pytest", "cases", "--autopilot-llm", model, "--record-mode", "all",
                              "--autopilot-run-id", f"bad{n}", "-p", "no:cacheprovider", "-p", "no:xdist"],
                             cwd=local_project, capture_output=True, text=True, timeout=DEADLINE_S)
        (run,) = _runs(local_project, f"bad{n}")
        assert run["status"] == "error" and message in run["error"] and "\n" not in run["error"], run["error"]
        assert "Traceback" not in out.stdout

    models = yaml.safe_load((local_project / "autopilot-models.yaml").read_text())
    next(iter(models["models"].values()))["context_window"] = 256
    (local_project / "autopilot-models.yaml").write_text(yaml.safe_dump(models))
    prompt = local_project / "prompts/toy/answer.j2"
    prompt.write_text(prompt.read_text() + "Background: " + "the answer is forty-two. " * 120)  # ~700 tokens
    _pytest(local_project, "-p", "no:xdist", "--record-mode", "all", run_id="short")
    (run,) = _runs(local_project, "short")
    assert run["status"] == "error" and run["error"].startswith("context_truncated: prompt of"), run["error"]
    assert "nothing was cut" in run["error"] and _servers_of(local_project) == []


@pytest.mark.live
def test_the_prompt_regression_workflow_live(local_project):
    """Edit a prompt: replay names exactly the affected case, re-recording offline fixes it, and
    compare gates the change."""
    other = local_project / "cases/toy/other.yaml"
    other.write_text((local_project / "cases/toy/answer.yaml").read_text().replace("toy/answer.j2", "toy/other.j2"))
    (local_project / "prompts/toy/other.j2").write_text("Write a Python program that writes {{ number }} to out.txt.\n")
    assert _pytest(local_project, "-p", "no:xdist", "--record-mode", "all", run_id="before").returncode in (0, 1)
    replay = _pytest(local_project, "-p", "no:xdist", "--record-mode", "none", run_id="replay")
    assert {r["status"] for r in _runs(local_project, "replay")} <= {"success", "failure"}, replay.stdout[-2000:]

    prompt = local_project / "prompts/toy/answer.j2"
    prompt.write_text(prompt.read_text().replace("Write a Python program", "Write a short Python program"))
    _pytest(local_project, "-p", "no:xdist", "--record-mode", "none", run_id="edited")
    statuses = {r["case"]: (r["status"], r["error"] or "") for r in _runs(local_project, "edited")}
    assert statuses["answer"][0] == "error" and statuses["answer"][1].startswith("cassette_miss")
    assert statuses["other"][0] in ("success", "failure")  # only the edited case misses

    assert _pytest(local_project, "-p", "no:xdist", "--record-mode", "all", "-k", "answer", run_id="after").returncode in (0, 1)
    gate = subprocess.run([sys.executable, "-m", "pytest_autopilot.cli", "compare", "reports/before", "reports/after",
                           "--fail-on-regression", "--json"], cwd=local_project, capture_output=True, text=True, timeout=120)
    # one run per side can never be a significant regression: the gate passes, and it compared
    # exactly the re-recorded case with the outcomes the two runs recorded
    assert gate.returncode == 0 and "gate: passed" in gate.stdout, gate.stdout + gate.stderr
    result, _ = json.JSONDecoder().raw_decode(gate.stdout)  # the comparison, then the gate's line
    (group,) = result["groups"]
    successes = {run_id: sum(r["strict_success"] for r in _runs(local_project, run_id) if r["case"] == "answer")
                 for run_id in ("before", "after")}
    assert "answer" in group["label"] and (group["n_a"], group["n_b"]) == (1, 1), group
    assert (group["successes_a"], group["successes_b"]) == (successes["before"], successes["after"]), group
    assert result["regressions"] == [] and any("other" in label for label in result["only_in_a"]), result
