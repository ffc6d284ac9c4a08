"""Collection: each case YAML becomes a module whose one test is parametrized over
(LLM × repetition), or, in self-test mode, over its reference and known-bad solutions.

Collection is pure (no network, no toolchain probing, ordered lists only), so every
xdist worker collects the same items.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from pathlib import Path

import pytest

from .cases import Case, CaseError, load_case
from .llms import LLMSpec
from .settings import slug

STAGE_MARKERS = {"DP": "dp", "MC": "mc", "ArdSG": "ardsg", "PyCPU-SG": "pycpu_sg", "PyTPU-SG": "pytpu_sg"}
MARKERS = {
    "autopilot": "an autopilot case item (case × LLM × repetition, or a self-test solution)",
    "scripted": "answers come from the scripted stand-in, not a real LLM",
    "self_test": "runs a reference or known-bad solution through the oracles (no LLM)",
    "coral": "needs a real Coral Dev Board (AUTOPILOT_CORAL=1)",
    "hil": "needs a board attached (hardware in the loop)",
    **{m: f"case of the {stage} stage" for stage, m in STAGE_MARKERS.items()},
}


@dataclass(frozen=True)
class Variant:
    """What one item evaluates: an LLM run, an archived program (re-scoring), or (self-test)
    one stored solution."""

    case: Case
    llm: LLMSpec | None = None
    repetition: int = 0
    archive_file: Path | None = None  # re-scoring: a previously generated program
    solution_key: str | None = None  # self-test: step key, e.g. "code" or "operations/split"
    solution_file: str | None = None
    expect_pass: bool = True
    why: str = ""

    @property
    def self_test(self) -> bool:
        return self.solution_file is not None

    @property
    def model_id(self) -> str:
        if self.archive_file is not None:
            return "archive-" + slug(self.archive_file.parent.name)
        return self.llm.id

    @property
    def id(self) -> str:
        if self.archive_file is not None:
            return f"{self.model_id}-{slug(self.archive_file.stem)}"
        if self.llm is not None:
            return f"{self.llm.id}-r{self.repetition:02d}"
        stem = Path(self.solution_file or "").stem
        key = self.solution_key.replace("/", "-") if self.solution_key else ""
        return f"{key}-{stem}"


def is_case_file(file_path: Path, cases_root: Path) -> bool:
    if file_path.suffix not in (".yaml", ".yml"):
        return False
    try:
        rel = file_path.resolve().relative_to(cases_root.resolve())
    except ValueError:
        return False
    return not ({"assets", "solutions"} & set(rel.parts[:-1]))


class CaseModule(pytest.Module):
    """A case file seen as a test module with one parametrized test function."""

    case: Case | None = None

    def _getobj(self):
        module = types.ModuleType(f"autopilot_case_{self.path.stem}")
        module.__file__ = str(self.path)
        return module

    def collect(self):
        session = self.config._autopilot  # AutopilotSession
        try:
            self.case = load_case(self.path, session.prompts_dir, session.hardware_dir)
        except CaseError as exc:
            raise self.CollectError(str(exc)) from None

        def case_test(autopilot_variant, autopilot_result):
            autopilot_result.check()

        case_test.__module__ = self.obj.__name__
        case_test.__name__ = self.case.name
        setattr(self.obj, self.case.name, case_test)
        self.session._fixturemanager.parsefactories(self)
        try:
            return list(self._genfunctions(self.case.name, case_test))
        except CaseError as exc:
            raise self.CollectError(str(exc)) from None


def archived_programs(case: Case, archive: Path) -> list[Path]:
    """Files of ``archive/<case name>/`` if that folder exists, else of ``archive/``."""
    folder = archive / case.name if (archive / case.name).is_dir() else archive
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def variants_for(case: Case, llms: list[LLMSpec], runs: int, self_test: bool,
                 archive: Path | None = None) -> list[Variant]:
    if archive is not None:
        if len(case.spec.steps) != 1 or case.spec.steps[0].kind != "code":
            raise CaseError(f"{case.path}: --autopilot-rescore judges one program per run; this case has "
                            f"steps {[s.name for s in case.spec.steps]} (select a single-step code case)")
        return [Variant(case, repetition=i, archive_file=path)
                for i, path in enumerate(archived_programs(case, archive), start=1)]
    if self_test:
        solutions = case.spec.solutions
        out = [Variant(case, solution_key=k, solution_file=f) for k, f in solutions.reference.items()]
        out += [Variant(case, solution_key=k, solution_file=b.file, expect_pass=False, why=b.why)
                for k, bads in solutions.bad.items() for b in bads]
        return out
    return [Variant(case, llm, rep) for llm in llms for rep in range(1, runs + 1)]


def parametrize(metafunc, session) -> None:
    module = metafunc.definition.getparent(CaseModule)
    if module is None or "autopilot_variant" not in metafunc.fixturenames:
        return
    case = module.case
    stage_mark = getattr(pytest.mark, STAGE_MARKERS[case.spec.stage])
    params = []
    for variant in variants_for(case, session.llms, session.settings.get("runs"), session.self_test,
                                session.rescore_dir):
        marks = [pytest.mark.autopilot, stage_mark]
        if variant.llm is not None and variant.llm.scripted:
            marks.append(pytest.mark.scripted)
        if variant.self_test:
            marks.append(pytest.mark.self_test)
        params.append(pytest.param(variant, id=variant.id, marks=marks))
    metafunc.parametrize("autopilot_variant", params)
