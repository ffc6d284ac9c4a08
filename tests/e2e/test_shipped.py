"""The shipped cases, prompts and cassettes: self-test through the real toolchains, the
offline replay sweep (cassettes in sync with prompts), and no credential in any cassette."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from pytest_autopilot.llm.cassettes import SECRET_PATTERN

ROOT = Path(__file__).parents[2]
SWEEP_RUNS = 8  # what scripts/sweep.sh runs and the committed cassettes cover
REPLAYED_RUNS = 4  # the stand-in's scripts cycle every 4 repetitions: r05-r08 repeat r01-r04's requests
PAPER_DETECTION = ROOT.parent / "shared/paper-assets/detection"  # user-supplied inputs of the paper cases
GOLDEN_RUNS = ROOT / "tests/golden/replay_runs.csv"  # per-run verdicts replayed before the restructure


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    if PAPER_DETECTION.is_dir():
        env["AUTOPILOT_DETECTION_ASSETS"] = str(PAPER_DETECTION)
    return env


def _pytest(*args, tmp_path):
    # as scripts/sweep.sh: cases whose toolchain or board is absent here are skipped with the reason;
    # every replayed cassette must match its committed manifest
    return subprocess.run([sys.executable, "-m", "pytest", *args, "-p", "no:cacheprovider",
                           "--autopilot-missing-toolchain", "skip", "--autopilot-cassette-check", "error",
                           "--autopilot-reports-dir", str(tmp_path / "reports")],
                          cwd=ROOT, capture_output=True, text=True, timeout=1500, env=_env())


def _case_files() -> list[Path]:
    return sorted(p for p in (ROOT / "cases").rglob("*.yaml") if not {"assets", "solutions"} & set(p.parts))


def _runnable_here(case_path: Path) -> bool:
    from pytest_autopilot.cases.spec import load_case
    from pytest_autopilot.toolchains import ToolchainMissing, check_requirements

    case = load_case(case_path, ROOT / "prompts")
    try:
        os.environ.update({k: v for k, v in _env().items() if k == "AUTOPILOT_DETECTION_ASSETS"})
        check_requirements(case.spec.requires.toolchains)
    except ToolchainMissing:
        return False
    return True


def test_self_test_of_shipped_cases(tmp_path):
    out = _pytest("cases", "--autopilot-self-test", "-n", "2", "-q", tmp_path=tmp_path)
    assert out.returncode == 0, out.stdout[-4000:]
    assert not re.search(r"\b\d+ failed\b", out.stdout), out.stdout[-4000:]  # (a check's detail may say "failed")
    (report,) = (tmp_path / "reports").glob("*/selftest.json")
    data = json.loads(report.read_text())
    assert data["as_expected"] and data["counts"]["judged"] > 0
    declared = [v for v in data["variants"] if v["caught_by"]]
    assert declared and all(v["caught_by_matched"] for v in declared), \
        [(v["nodeid"], v["caught_by"], v["rejected_by"]) for v in declared if not v["caught_by_matched"]]


def test_offline_sweep_replays_every_shipped_cassette(tmp_path):
    out = _pytest("cases", "-n", "2", "--autopilot-runs", str(REPLAYED_RUNS), "--autopilot-run-id", "sweep", "-q", "--record-mode", "none",
                  tmp_path=tmp_path)
    assert out.returncode in (0, 1), out.stdout[-4000:]  # 1: some scripted runs fail by design
    assert "cassette_miss" not in out.stdout, out.stdout[-4000:]
    data = json.loads((tmp_path / "reports/sweep/results.json").read_text())
    assert data["complete"] is True and data["provenance"]["scripted_standin"] is True
    runs = data["runs"]
    cases = sorted({r["nodeid"].split("::")[0] for r in runs})
    runnable = [str(p.relative_to(ROOT)) for p in _case_files() if _runnable_here(p)]
    assert cases == runnable
    assert len(runs) == len(cases) * REPLAYED_RUNS
    assert all(r["status"] in ("success", "failure") for r in runs), [r["error"] for r in runs if r["error"]]
    assert any(r["status"] == "success" and len(r["attempts"]) > 1 for r in runs), "no run was repaired"
    assert any(r["status"] == "failure" for r in runs), "the scripted sweep should include failing runs"
    assert "autopilot summary" in out.stdout and "scripted stand-in" in out.stdout
    assert _verdicts(runs) == _golden_verdicts(cases)
    replayed = data["provenance"]["replayed_cassettes"]
    assert sorted(replayed) == sorted(r["cassette"] for r in runs) and all(len(h) == 64 for h in replayed.values())


def _verdicts(runs: list[dict]) -> dict[str, tuple]:
    return {r["nodeid"]: (r["status"], str(r["strict_success"]), str(r["legacy_success"]), str(len(r["attempts"])))
            for r in runs}


def _golden_verdicts(cases: list[str]) -> dict[str, tuple]:
    """The committed golden rows of the cases that can run here (paper inputs may be absent)."""
    with GOLDEN_RUNS.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {r["nodeid"]: (r["status"], r["strict_success"], r["legacy_success"], r["attempts"])
            for r in rows if r["nodeid"].split("::")[0] in cases}


def test_every_case_has_committed_cassettes():
    case_files = [p for p in _case_files() if _runnable_here(p)]  # a Coral-only case cannot be recorded here
    assert case_files
    for case in case_files:
        rel = case.relative_to(ROOT / "cases").with_suffix("")
        for rep in range(1, SWEEP_RUNS + 1):
            assert (ROOT / "cassettes" / rel / f"scripted-standin-r{rep:02d}.yaml").is_file(), (case, rep)
        for rep in range(REPLAYED_RUNS + 1, SWEEP_RUNS + 1):  # same requests as the replayed ones
            twin = (rep - 1) % REPLAYED_RUNS + 1
            assert _request_bodies(ROOT / "cassettes" / rel / f"scripted-standin-r{rep:02d}.yaml") == \
                _request_bodies(ROOT / "cassettes" / rel / f"scripted-standin-r{twin:02d}.yaml"), (case, rep)


def test_every_committed_cassette_loads_and_matches_its_manifest(capsys):
    from pytest_autopilot.cli import main

    assert main(["cassettes", "--autopilot-cassettes-dir", str(ROOT / "cassettes")]) == 0, capsys.readouterr().out
    folders = {p.parent for p in (ROOT / "cassettes").rglob("*.yaml")}
    assert all((folder / "MANIFEST.sha256").is_file() for folder in folders)


def _request_bodies(path: Path) -> list:
    import yaml

    return [i["request"]["body"] for i in yaml.safe_load(path.read_text())["interactions"]]


def test_no_credential_in_cassettes_or_reports_folder():
    scanned = 0
    for folder in ("cassettes", "reports", "cases", "prompts"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file():
                text = path.read_text(encoding="utf-8", errors="replace")
                match = SECRET_PATTERN.search(text)
                assert match is None, f"{path}: looks like a credential: {match.group(0)[:12]}..."
                assert "authorization" not in text.lower() or folder != "cassettes", path
                scanned += 1
    assert scanned > 0


def test_secret_scan_pattern_catches_keys():
    # fake credentials, assembled at run time so secret scanners do not flag this file
    for secret in ("sk-" + "proj-abcdefghijklmnopqrstuvwxyz012345", "Bearer " + "eyJhbGciOiJIUzI1NiIsInR5cCI6",
                   "AKIA" + "ABCDEFGHIJKLMNOP", "-----BEGIN OPENSSH " + "PRIVATE KEY-----"):
        assert SECRET_PATTERN.search(f"headers: {secret}"), secret


REAL_MODELS = {  # the named local models and their GGUF's sha256, as provenance must record them
    "qwen2.5-coder-0.5b": "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    "qwen2.5-coder-1.5b": "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
}
STRATEGIES = ("stateless", "conversation", "resample")


def _real_cassettes() -> dict[str, Path]:
    """Committed real-model cassettes of cases that can run here, by the node id they replay for."""
    out = {}
    for cassette in sorted((ROOT / "cassettes").glob("*/*/local-*.yaml")):
        case = Path("cases") / f"{cassette.parent.relative_to(ROOT / 'cassettes')}.yaml"
        if _runnable_here(ROOT / case):
            out[f"{case}::{case.stem}[{cassette.stem}]"] = cassette
    return out


def test_real_model_cassettes_replay_offline_with_their_provenance(tmp_path):
    """The main job's real-model rows: every committed real cassette replays (no server, no model file:
    the same prompts as recorded), labelled with its model and strategy, none lost."""
    recorded = _real_cassettes()
    assert recorded, "no real-model cassette is committed"
    llms = [arg for name in REAL_MODELS for arg in ("--autopilot-llm", f"local/{name}")]
    strategies = [arg for name in STRATEGIES for arg in ("--autopilot-repair-strategy", name)]
    out = _pytest("cases", "-n", "2", *llms, *strategies, "--autopilot-runs", str(SWEEP_RUNS),
                  "--autopilot-recorded-only", "--record-mode", "none", "--autopilot-run-id", "real", "-q",
                  tmp_path=tmp_path)
    assert out.returncode in (0, 1), out.stdout[-4000:]
    data = json.loads((tmp_path / "reports/real/results.json").read_text())
    runs = {r["nodeid"]: r for r in data["runs"]}
    assert sorted(runs) == sorted(recorded)
    assert all(r["status"] in ("success", "failure") for r in runs.values()), [r["error"] for r in runs.values() if r["error"]]
    for nodeid, run in runs.items():
        param = nodeid.split("[")[1].rstrip("]")
        assert run["model"] in (f"local/{name}" for name in REAL_MODELS) and not run["scripted"]
        assert run["strategy"] == next((s for s in STRATEGIES if f"-{s}-" in param), "stateless")
    for model_id in {r["model_id"] for r in runs.values()}:
        name = model_id.removeprefix("local-")
        assert data["provenance"]["models"][model_id]["gguf_sha256"] == REAL_MODELS[name]
    assert data["provenance"]["scripted_standin"] is False
