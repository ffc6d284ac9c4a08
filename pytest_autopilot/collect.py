"""Collection: each case YAML is a ``pytest.File`` whose items are its variants: one per
(LLM × repetition), or, in self-test mode, one per reference and known-bad solution. An
item's id is ``<case>[<variant>]``, e.g. ``clean_split[scripted-standin-r01]``.

Collection is pure (no network, no toolchain probing, ordered lists only), so every
xdist worker collects the same items.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_autopilot.cases.spec import Case, CaseError, load_case
from pytest_autopilot.core.stages import STAGES
from pytest_autopilot.llm.profiles import LLMSpec
from pytest_autopilot.loop.strategies import DEFAULT_STRATEGY, STRATEGIES
from pytest_autopilot.runner import Variant

MARKERS = {
    "autopilot": "an autopilot case item (case × LLM × repetition, or a self-test solution)",
    "scripted": "answers come from the scripted stand-in, not a real LLM",
    "self_test": "runs a reference or known-bad solution through the oracles (no LLM)",
    "coral": "needs a real Coral Dev Board (AUTOPILOT_CORAL=1)",
    "hil": "needs a board attached (hardware in the loop)",
    **{st.marker: f"case of the {st.name} stage ({st.description})" for st in STAGES.values()},
}


def is_case_file(file_path: Path, cases_root: Path) -> bool:
    if file_path.suffix not in (".yaml", ".yml"):
        return False
    try:
        rel = file_path.resolve().relative_to(cases_root.resolve())
    except ValueError:
        return False
    return not ({"assets", "solutions"} & set(rel.parts[:-1]))


class CaseFile(pytest.File):
    """A case file: loaded and checked once, then one item per variant."""

    def collect(self):
        from pytest_autopilot.session import SESSION_KEY

        session = self.config.stash[SESSION_KEY]
        try:
            case = load_case(self.path, session.prompts_dir, session.hardware_dir)
            if case.executor not in session.executors:
                raise CaseError(f"{self.path}: field executor: unknown executor {case.executor!r}; known: "
                                f"{', '.join(session.executors.names())} (or register one in conftest.py)")
            variants = variants_for(case, session.llms, session.settings.get("runs"), session.self_test,
                                    session.rescore_dir, session.settings.explicit("repair_strategy"))
        except CaseError as exc:
            raise self.CollectError(str(exc)) from None
        stage_mark = getattr(pytest.mark, STAGES[case.spec.stage].marker)
        for variant in variants:
            item = CaseItem.from_parent(self, name=f"{case.name}[{variant.id}]", variant=variant)
            for mark in (pytest.mark.autopilot, stage_mark):
                item.add_marker(mark)
            if variant.llm is not None and variant.llm.scripted:
                item.add_marker(pytest.mark.scripted)
            if variant.self_test:
                item.add_marker(pytest.mark.self_test)
            yield item


class CaseItem(pytest.Item):
    """One variant of a case: runs it and fails with a one-line reason when it does not pass."""

    def __init__(self, *, variant: Variant, **kwargs):
        super().__init__(**kwargs)
        self.variant = variant

    def runtest(self) -> None:
        from pytest_autopilot import runner
        from pytest_autopilot.session import RESULT_PROPERTY, SESSION_KEY, dump_result

        session = self.config.stash[SESSION_KEY]
        if self.variant.self_test:
            problem = runner.run_self_test(session, self.variant)
        else:
            record = runner.run_variant(session, self.nodeid, self.variant)
            self.user_properties.append((RESULT_PROPERTY, dump_result(record)))
            problem = runner.outcome_message(record)
        if problem:
            pytest.fail(problem, pytrace=False)

    def reportinfo(self):
        return self.path, None, self.name


def archived_programs(case: Case, archive: Path) -> list[Path]:
    """Files of ``archive/<case name>/`` if that folder exists, else of ``archive/``."""
    folder = archive / case.name if (archive / case.name).is_dir() else archive
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def strategies_for(case: Case, llm: LLMSpec, explicit: list[str] | None) -> list[str]:
    """Repair strategies of one (case, model): command line / ini > models-file profile > case > stateless."""
    chosen = list(explicit or llm.strategies or case.spec.repair.strategy or [DEFAULT_STRATEGY])
    unknown = [s for s in chosen if s not in STRATEGIES]
    if unknown:
        raise CaseError(f"{case.path}: repair strategy {unknown[0]!r} (from the command line, ini or models file of "
                        f"{llm.model}) is not one of {', '.join(STRATEGIES)}")
    return list(dict.fromkeys(chosen))


def variants_for(case: Case, llms: list[LLMSpec], runs: int, self_test: bool,
                 archive: Path | None = None, strategies: list[str] | None = None) -> list[Variant]:
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
    return [Variant(case, llm, rep, strategy=strategy) for llm in llms for strategy in strategies_for(case, llm, strategies)
            for rep in range(1, runs + 1)]
