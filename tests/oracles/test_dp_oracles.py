"""DP stage content: the fruit dataset generator, the two DP cases, their prompts and the
strict oracles -- per oracle, its reference accepted and one known-bad solution rejected by its
declared ``caught_by`` check, running the real sandbox, with what only these tests look at
(the checks that ran, the extracted manifest, a failing detail). Every other stored solution is
judged by the shipped self-test (tests/e2e/test_shipped.py).

Run: ``PYTHONPATH=. python -m pytest tests/test_dp_oracles.py -q -p no:cacheprovider``
"""

from __future__ import annotations

import importlib.util
import io
import json
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

from pytest_autopilot import oracles
from pytest_autopilot.cases.prompts import render
from pytest_autopilot.cases.spec import Case, load_case
from pytest_autopilot.core.errors import HarnessError
from pytest_autopilot.core.records import Category, Verdict
from pytest_autopilot.executors.local import PythonExecutor
from pytest_autopilot.executors.sandbox import Limits, Sandbox
from pytest_autopilot.llm.standin import answer_text, scripted_solution
from pytest_autopilot.loop.extract import NoCode, extract_code, extract_json
from pytest_autopilot.oracles import OracleContext, dp_clean_split, dp_split

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "cases" / "dp"
PROMPTS = ROOT / "prompts"
GENERATOR = ROOT / "scripts" / "make_fruit_data.py"
COMMITTED_CSV = CASES / "assets" / "fruit_colours.csv"
PAPER_CSV = ROOT.parent / "shared" / "paper-assets" / "fruit" / "fruit_data.csv"


# ----------------------------------------------------------------------------- helpers


def _case(name: str) -> Case:
    return load_case(CASES / f"{name}.yaml", PROMPTS)


def _bad(case: Case) -> list[tuple[str, Path, str]]:
    """(step key, file, expected failing check) for every known-bad solution."""
    return [(key, case.solution_path(b.file), b.caught_by)
            for key, bads in case.spec.solutions.bad.items() for b in bads]


def _limits(case: Case) -> Limits:
    spec = case.spec
    return Limits().replace(timeout_s=spec.timeouts.run_s, cpu_s=spec.limits.cpu_s, memory_mb=spec.limits.memory_mb,
                            file_size_mb=spec.limits.file_size_mb, processes=spec.limits.processes)


def _workspace(case: Case) -> dict[str, Path | bytes]:
    return {dest: case.asset(name) for dest, name in case.spec.workspace.items()}


def rerun(executor, limits):
    """``ctx.run`` as the loop provides it: the same executor and limits, a fresh work dir
    removed on exit."""

    @contextmanager
    def run(code: str, files, prefix: str = "rerun-"):
        workdir = executor.sandbox.new_workdir(prefix=prefix)
        try:
            yield executor.execute(code, workdir, files, limits), workdir
        finally:
            executor.sandbox.cleanup(workdir)

    return run


def _code_and_manifest(path: Path, language: str, manifest: bool):
    """What the loop would extract from the stand-in's answer for this solution file."""
    text = answer_text(path)
    code = extract_code(text, language).text
    parsed = None
    if manifest:
        try:
            parsed = extract_json(text)[0]
        except NoCode:
            parsed = None  # the loop reports no_code; the oracle must reject it too
    return code, parsed


class Runner:
    """Runs one answer with the python executor in a fresh sandbox work dir laid out like the
    loop does (``files`` are its inputs, ``ctx.inputs``), then judges it."""

    def __init__(self, sandbox: Sandbox, case: Case):
        self.executor, self.case = PythonExecutor(sandbox), case
        self.limits = _limits(case)

    def judge(self, step_name: str, code: str, files: dict[str, Path | bytes], *, manifest=None, item=None,
              assets: dict[str, Path] | None = None) -> tuple[Verdict, dict[str, bytes]]:
        step = self.case.step(step_name)
        sandbox = self.executor.sandbox
        workdir = sandbox.new_workdir(prefix="dp-test-")
        try:
            execution = self.executor.execute(code, workdir, files, self.limits)
            ctx = OracleContext(
                workdir=workdir, execution=execution, answer=code, params=dict(step.oracle.params),
                case_dir=self.case.dir, assets=assets or {n: self.case.asset(n) for n in self.case.spec.assets},
                workspace=dict(self.case.spec.workspace), sandbox=sandbox, limits=self.limits,
                item=item, manifest=manifest, inputs=dict(files), run=rerun(self.executor, self.limits))
            verdict = oracles.get(step.oracle.name)(ctx)
            outputs = {}
            for rel in (manifest or {}).get("outputs", []) if isinstance(manifest, dict) else []:
                if (workdir / rel).is_file():
                    outputs[rel] = (workdir / rel).read_bytes()
            return verdict, outputs
        finally:
            sandbox.cleanup(workdir)


def _explain(verdict: Verdict) -> str:
    return "\n".join(f"{'ok ' if c.passed else 'BAD'} {c.name}: {c.detail[:400]}" for c in verdict.checks)


def _assert_rejected_by(verdict: Verdict, check: str, label: str) -> None:
    assert not verdict.passed, f"{label} was accepted:\n{_explain(verdict)}"
    failed = {c.name for c in verdict.failed_checks}
    assert check in failed, f"{label}: expected check {check!r} to fail, failed: {sorted(failed)}\n{_explain(verdict)}"
    assert verdict.category in Category.ALL


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox()


# ----------------------------------------------------------------------------- dataset


def _generator():
    spec = importlib.util.spec_from_file_location("make_fruit_data", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generator_reproduces_committed_csv_byte_for_byte(tmp_path):
    gen = _generator()
    assert gen.generate().encode("ascii") == COMMITTED_CSV.read_bytes(), \
        "cases/dp/assets/fruit_colours.csv differs from scripts/make_fruit_data.py's output; regenerate and commit it"
    gen.main(["--out", str(tmp_path / "again.csv")])
    assert (tmp_path / "again.csv").read_bytes() == COMMITTED_CSV.read_bytes()


def test_generated_dataset_has_the_documented_defects():
    df = pd.read_csv(COMMITTED_CSV)
    assert list(df.columns) == ["Fruit", "Red", "Green", "Blue"]
    assert df["Fruit"].value_counts().to_dict() == {"banana": 94, "orange": 91, "apple": 71}
    assert int(df.duplicated().sum()) == 6
    assert int(df.isna().sum().sum()) == 4 and df["Fruit"].notna().all()
    channels = df[["Red", "Green", "Blue"]]
    assert int(((channels < 0) | (channels > 255)).any(axis=1).sum()) == 2
    assert (channels.dropna() == channels.dropna().round()).all().all(), "readings are integer counts"
    clean, info = dp_split.expected_clean(COMMITTED_CSV, dp_split.clean_params({}))
    assert len(clean) == 244 and info["classes"] == {"apple": 66, "banana": 91, "orange": 87}


def test_other_seed_gives_other_data_with_the_same_counts():
    gen = _generator()
    other = pd.read_csv(io.StringIO(gen.generate(1)))
    assert gen.generate(1) != gen.generate()
    assert other["Fruit"].value_counts().to_dict() == {"banana": 94, "orange": 91, "apple": 71}


# ----------------------------------------------------------------------------- cases and prompts


def test_cases_load_and_context_agrees_with_oracle_params():
    pipeline, clean = _case("fruit_pipeline"), _case("clean_split")
    ctx = pipeline.spec.context
    plan_params = pipeline.step("plan").oracle.params
    op_params = pipeline.step("operations").oracle.params
    assert ctx["n_operations"] == plan_params["operations"]
    assert ctx["name_rules"]["split"] == op_params["split_keywords"] == plan_params["required"]["split"]["keywords"]
    assert ctx["name_rules"]["missing"] == op_params["missing_keywords"] == plan_params["required"]["missing_values"]["keywords"]
    assert ctx["name_rules"]["duplicates"] == op_params["duplicate_keywords"] == plan_params["required"]["duplicates"]["keywords"]
    reference_plan = json.loads(pipeline.solution_path(pipeline.spec.solutions.reference["plan"]).read_text())
    names = [op["name"] for op in reference_plan["operations"]]
    assert sorted(f"operations/{n}" for n in names) == sorted(k for k in pipeline.spec.solutions.reference if k != "plan")

    c, p = clean.spec.context, clean.step("code").oracle.params
    assert (c["data_file"], c["train_file"], c["test_file"]) == (p["input"], p["train"], p["test"])
    assert (c["value_range"], c["test_fraction"], c["min_class_rows"], c["label"], c["channels"]) == \
        (p["valid_range"], p["test_fraction"], p["min_class_rows"], p["label"], p["channels"])
    dp_split.clean_params(p)  # no unknown params


@pytest.mark.parametrize("name", ["fruit_pipeline", "clean_split"])
def test_standin_scripts_resolve_to_solution_files(name):
    case = _case(name)
    for repetition, script in enumerate(case.spec.standin, start=1):
        for key in script:
            keys = [key] if "/" in key or not case.step(key).for_each else [
                k for k in case.spec.solutions.reference if k.startswith(key + "/")]
            for step_key in keys:
                for attempt in range(1, case.spec.repair.max_attempts + 1):
                    assert scripted_solution(case, step_key, repetition, attempt).is_file()


def _loop_variables(case: Case, step_name: str, **extra) -> dict:
    spec = case.spec
    step = case.step(step_name)
    return {**spec.context, "description": spec.description, "workspace": dict(spec.workspace), "steps": {},
            "item": None, "items": None, "inputs": sorted(spec.workspace), "language": step.language, **extra}


def test_prompts_render_with_every_input():
    pipeline = _case("fruit_pipeline")
    text = render(PROMPTS, "dp/plan.j2", _loop_variables(pipeline, "plan"))
    for needle in ("classify fruits", "data/fruit.csv", "Fruit,Red,Green,Blue", "exactly 8", "```json", "snake_case", "split"):
        assert needle in text, needle

    plan = json.loads(pipeline.solution_path(pipeline.spec.solutions.reference["plan"]).read_text())
    ops = plan["operations"]
    first = render(PROMPTS, "dp/operation.j2", _loop_variables(
        pipeline, "operations", steps={"plan": plan}, items=ops, item=ops[0]))
    assert "`data/fruit.csv` (the raw data)" in first and "operation 1: **validate_schema**" in first
    assert "```python" in first and '{"outputs": ["out/validate_schema.csv"]}' in first
    assert "scikit-learn is not installed" in first
    split = render(PROMPTS, "dp/operation.j2", _loop_variables(
        pipeline, "operations", steps={"plan": plan}, items=ops, item=ops[6],
        inputs=["data/fruit.csv", "out/encoded.csv"]))
    assert "`out/encoded.csv` (written by the previous operation, encode_labels)" in split
    assert "`data/fruit.csv` (the raw data)" not in split
    assert "This operation is the split" in split and '"out/train.csv", "out/test.csv"' in split
    missing = render(PROMPTS, "dp/operation.j2", _loop_variables(
        pipeline, "operations", steps={"plan": plan}, items=ops, item=ops[2], inputs=["data/fruit.csv", "out/deduplicated.csv"]))
    assert "no missing value may remain" in missing and "This operation is the split" not in missing

    clean = _case("clean_split")
    text = render(PROMPTS, "dp/clean_split.j2", _loop_variables(clean, "code"))
    for needle in ("data/fruit.csv", "Fruit,Red,Green,Blue", "out/train.csv", "out/test.csv", "0 to 255",
                   "max(1, round(0.2 * n))", "default_rng(42)", "fewer than 2 rows", "non-zero status",
                   "do not clip", "index=False", "```python"):
        assert needle in text, needle


# ----------------------------------------------------------------------------- fruit_pipeline: plan


def _plan_verdict(case: Case, path: Path) -> Verdict:
    parsed, _ = extract_json(answer_text(path))
    step = case.step("plan")
    ctx = OracleContext(workdir=Path("."), execution=None, answer=parsed, params=dict(step.oracle.params),
                        case_dir=case.dir, assets={}, workspace=dict(case.spec.workspace))
    return oracles.get("dp_plan")(ctx)


def test_plan_reference_accepted():
    case = _case("fruit_pipeline")
    verdict = _plan_verdict(case, case.solution_path(case.spec.solutions.reference["plan"]))
    assert verdict.passed, _explain(verdict)


def test_plan_bad_rejected_by_named_check():
    case, stem = _case("fruit_pipeline"), "bad_plan_no_split"
    (key, path, check), = [b for b in _bad(case) if b[1].stem == stem]
    assert key == "plan"
    _assert_rejected_by(_plan_verdict(case, path), check, stem)


def test_plan_not_an_object_is_artifact_missing():
    case = _case("fruit_pipeline")
    ctx = OracleContext(workdir=Path("."), execution=None, answer=[{"name": "x"}], params={"operations": 8},
                        case_dir=case.dir, assets={}, workspace={})
    verdict = oracles.get("dp_plan")(ctx)
    assert not verdict.passed and verdict.category == Category.ARTIFACT_MISSING


# ----------------------------------------------------------------------------- fruit_pipeline: operations


@pytest.fixture(scope="module")
def reference_chain(sandbox):
    """Run the reference plan's operations in order, chaining the manifest-listed outputs as
    the loop does: each item's work dir holds the workspace files plus the previous item's
    outputs at the same relative paths. Returns name -> (item, inputs, verdict)."""
    case = _case("fruit_pipeline")
    runner = Runner(sandbox, case)
    plan = json.loads(case.solution_path(case.spec.solutions.reference["plan"]).read_text())
    inputs: dict[str, Path | bytes] = _workspace(case)
    chain = {}
    for item in plan["operations"]:
        path = case.solution_path(case.spec.solutions.reference[f"operations/{item['name']}"])
        code, manifest = _code_and_manifest(path, "python", manifest=True)
        verdict, outputs = runner.judge("operations", code, inputs, manifest=manifest, item=item)
        chain[item["name"]] = (item, dict(inputs), verdict)
        inputs = {**_workspace(case), **outputs}
    return chain


def test_operation_references_accepted_in_a_chain(reference_chain):
    assert len(reference_chain) == 8
    for name, (_item, _inputs, verdict) in reference_chain.items():
        assert verdict.passed, f"reference operation {name} rejected:\n{_explain(verdict)}"
    # the name-driven checks ran where they should
    checks = {name: {c.name for c in v.checks} for name, (_i, _in, v) in reference_chain.items()}
    assert {"split_files", "split_no_leakage", "split_covers_input"} <= checks["split_train_test"]
    assert "missing_handled" in checks["handle_missing_values"]
    assert "duplicates_removed" in checks["drop_duplicates"]
    assert "split_files" not in checks["scale_features"]
    assert {"scaling_same_for_test", "scaling_fitted_on_train"} <= checks["scale_features"]
    assert "encoding_one_to_one" in checks["encode_labels"] and "drop_only_removes" in checks["remove_outliers"]


def test_operation_bad_rejected_by_named_check(sandbox, reference_chain):
    case, stem = _case("fruit_pipeline"), "bad_no_manifest"
    (key, path, check), = [b for b in _bad(case) if b[1].stem == stem]
    item, inputs, _ = reference_chain[key.split("/", 1)[1]]
    code, manifest = _code_and_manifest(path, "python", manifest=True)
    verdict, _ = Runner(sandbox, case).judge("operations", code, inputs, manifest=manifest, item=item)
    _assert_rejected_by(verdict, check, stem)
    with pytest.raises(NoCode):  # the answer has no manifest block: the oracle gets none
        extract_json(answer_text(path))
    assert verdict.category == Category.ARTIFACT_MISSING


# ----------------------------------------------------------------------------- clean_split


def _clean_split_verdict(sandbox, path: Path, data: Path | None = None) -> Verdict:
    """Judge one clean_split answer on the case's data, or on ``data`` (another fruit CSV)."""
    case = _case("clean_split")
    code, _ = _code_and_manifest(path, "python", manifest=False)
    files, assets = _workspace(case), None
    if data is not None:  # the oracle reads the pristine input through the assets mapping
        files = {dest: data for dest in files}
        assets = {name: data for name in case.spec.assets}
    verdict, _ = Runner(sandbox, case).judge("code", code, files, assets=assets)
    return verdict


def test_clean_split_reference_accepted(sandbox):
    case = _case("clean_split")
    verdict = _clean_split_verdict(sandbox, case.solution_path(case.spec.solutions.reference["code"]))
    assert verdict.passed, _explain(verdict)
    names = {c.name for c in verdict.checks}
    assert {"rows_match_input", "train_minmax", "no_leakage", "deterministic", "property_reruns"} <= names
    assert "8 datasets" in next(c for c in verdict.checks if c.name == "property_reruns").detail


def test_clean_split_bad_rejected_by_named_check(sandbox):
    case, stem = _case("clean_split"), "bad_hardcoded"
    (_key, path, check), = [b for b in _bad(case) if b[1].stem == stem]
    verdict = _clean_split_verdict(sandbox, path)
    _assert_rejected_by(verdict, check, stem)
    # right on the one file: only the re-runs on other data catch it
    assert {c.name for c in verdict.failed_checks} == {"property_reruns"}
    detail = verdict.failed_checks[0].detail
    assert "data/fruit.csv was:" in detail and "kiwi" in detail


def test_clean_split_reference_accepted_on_the_papers_data(sandbox):
    if not PAPER_CSV.is_file():
        pytest.skip(f"the paper's fruit data is not available at {PAPER_CSV}")
    case = _case("clean_split")
    verdict = _clean_split_verdict(sandbox, case.solution_path(case.spec.solutions.reference["code"]), PAPER_CSV)
    assert verdict.passed, _explain(verdict)


def test_expected_clean_follows_the_spec():
    p = dp_split.clean_params({})
    csv = ("Fruit,Red,Green,Blue\n"
           "a,1,2,3\na,1,2,3\na,4,5,6\na,7,,9\nb,300,1,1\nb,1,1,1\nc,0,255,0\nc,10,10,10\n,5,5,5\n")
    clean, info = dp_split.expected_clean(csv.encode(), p)
    assert sorted(map(tuple, clean.astype(str).to_numpy())) == sorted(
        [("a", "1.0", "2.0", "3.0"), ("a", "4.0", "5.0", "6.0"), ("c", "0.0", "255.0", "0.0"), ("c", "10.0", "10.0", "10.0")])
    assert info["dropped_classes"] == ["b"] and info["duplicates"] == 1 and info["out_of_range"] == 1


# ----------------------------------------------------------------------------- oracle details (no sandbox)


def test_property_reruns_use_the_same_datasets_every_time(monkeypatch):
    """Derandomized: replays and repair prompts see the same datasets; and they vary in kind."""
    seen: list[str] = []

    def record(ctx, code, csv_text, p):
        seen.append(csv_text)
        return None

    monkeypatch.setattr(dp_clean_split, "_example_problem", record)
    p = dp_split.clean_params({"property_examples": 8})
    first = dp_clean_split._property_check(None, "pass", p)
    runs, seen[:] = list(seen), []
    second = dp_clean_split._property_check(None, "pass", p)
    assert first.passed and second.passed and runs == seen and len(runs) == 8
    infos = [dp_split.expected_clean(t.encode(), p)[1] for t in runs]
    assert any(len(i["classes"]) == 1 for i in infos), "a single-class dataset"
    assert any(i["clean"] == 0 for i in infos), "a dataset with no usable rows"
    assert any(i["dropped_classes"] for i in infos), "a class with too few rows"
    assert any(set(i["classes"]) - {"apple", "banana", "orange"} for i in infos), "other class names"
    assert sum(i["duplicates"] > 0 for i in infos) >= 2 and sum(i["incomplete"] > 0 for i in infos) >= 2


def test_property_failure_detail_shows_the_dataset(monkeypatch):
    monkeypatch.setattr(dp_clean_split, "_example_problem", lambda ctx, code, csv_text, p: "check row_count: wrong")
    check = dp_clean_split._property_check(None, "pass", dp_split.clean_params({}))
    assert not check.passed
    assert "single class" in check.detail and "check row_count: wrong" in check.detail
    assert "data/fruit.csv was:\nFruit,Red,Green,Blue\nkiwi," in check.detail


def test_plan_split_must_be_unique():
    case = _case("fruit_pipeline")
    plan = json.loads(case.solution_path(case.spec.solutions.reference["plan"]).read_text())
    plan["operations"][0] = {"name": "split_features_labels", "description": "Separate the features from the label."}
    ctx = OracleContext(workdir=Path("."), execution=None, answer=plan, params=dict(case.step("plan").oracle.params),
                        case_dir=case.dir, assets={}, workspace={})
    _assert_rejected_by(oracles.get("dp_plan")(ctx), "covers:split", "two split operations")


def _operation_ctx(tmp_path: Path, outputs: dict[str, str], name: str, source: str, manifest=None) -> OracleContext:
    for rel, text in outputs.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return OracleContext(workdir=tmp_path, execution=None, answer="", params={}, case_dir=tmp_path, assets={},
                         workspace={"data/fruit.csv": "fruit"}, item={"name": name, "description": "x"},
                         manifest={"outputs": list(outputs)} if manifest is None else manifest,
                         inputs={"data/fruit.csv": b"", "out/prev.csv": source.encode()})


SOURCE = "Fruit,Red\napple,1\napple,2\nbanana,3\nbanana,4\n"


def test_operation_split_file_roles_and_coverage(tmp_path):
    ok = _operation_ctx(tmp_path, {"out/split_train_test_train.csv": "Fruit,Red\napple,1\nbanana,3\n",
                                   "out/split_train_test_test.csv": "Fruit,Red\napple,2\nbanana,4\n"},
                        "split_train_test", SOURCE)
    verdict = oracles.get("dp_operation")(ok)
    assert verdict.passed, _explain(verdict)
    lost = _operation_ctx(tmp_path / "b", {"out/train.csv": "Fruit,Red\napple,1\nbanana,3\n",
                                           "out/test.csv": "Fruit,Red\napple,2\nbanana,3\n"}, "split_data", SOURCE)
    _assert_rejected_by(oracles.get("dp_operation")(lost), "split_covers_input", "split losing a row")


def test_operation_manifest_paths_must_stay_in_out(tmp_path):
    ctx = _operation_ctx(tmp_path, {"out/a.csv": SOURCE}, "tidy", SOURCE,
                         manifest={"outputs": ["out/a.csv", "../escape.csv", "/etc/passwd"]})
    verdict = oracles.get("dp_operation")(ctx)
    _assert_rejected_by(verdict, "manifest_paths", "paths outside out/")
    assert verdict.category == Category.ARTIFACT_MISSING


def test_operation_without_previous_outputs_reads_the_workspace_files(tmp_path):
    asset = tmp_path / "fruit.csv"
    asset.write_text(SOURCE)
    ctx = OracleContext(workdir=tmp_path, execution=None, answer="", params={}, case_dir=tmp_path,
                        assets={"fruit": asset}, workspace={"data/fruit.csv": "fruit"},
                        item={"name": "tidy", "description": "x"}, manifest={"outputs": ["out/t.csv"]},
                        inputs={"data/fruit.csv": asset})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "t.csv").write_text(SOURCE + "apple,9\n")
    _assert_rejected_by(oracles.get("dp_operation")(ctx), "no_row_explosion", "more rows than the input")


def test_operation_reads_the_laid_out_inputs_not_the_work_dir_copies(tmp_path):
    """ctx.inputs holds what the loop laid out before the run: a program that rewrites its
    copy of the previous outputs (or of the raw data) cannot change what it is judged against."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "fruit.csv").write_text(SOURCE + "apple,1\nbanana,99\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "prev.csv").write_text("Fruit,Red\napple,1\n")  # the program truncated its copy
    ctx = _operation_ctx(tmp_path, {"out/train.csv": "Fruit,Red\napple,1\nbanana,3\n",
                                    "out/test.csv": "Fruit,Red\napple,2\nbanana,4\n"}, "split_train_test", SOURCE)
    verdict = oracles.get("dp_operation")(ctx)
    assert verdict.passed, _explain(verdict)


def test_operation_without_any_csv_input_is_a_harness_error(tmp_path):
    ctx = _operation_ctx(tmp_path, {"out/t.csv": SOURCE}, "tidy", SOURCE)
    ctx.inputs = {}
    with pytest.raises(HarnessError, match="no CSV input"):
        oracles.get("dp_operation")(ctx)


def test_clean_split_without_rerun_is_a_harness_error(tmp_path, monkeypatch):
    """The determinism and property re-runs go through ctx.run (the case's executor); without
    it the oracle cannot finish its checks, which is the harness's fault, not the answer's."""
    from pytest_autopilot.core.records import Check

    monkeypatch.setattr(dp_clean_split, "check_split_outputs", lambda workdir, clean, p: [Check("row_count", True, "")])
    case = _case("clean_split")
    ctx = OracleContext(workdir=tmp_path, execution=None, answer="print('hi')", params=dict(case.step("code").oracle.params),
                        case_dir=case.dir, assets={n: case.asset(n) for n in case.spec.assets},
                        workspace=dict(case.spec.workspace))
    with pytest.raises(HarnessError, match="ctx.run"):
        oracles.get("dp_clean_split")(ctx)
