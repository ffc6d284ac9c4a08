"""Collection: each case YAML is a ``pytest.File`` whose items are its variants: one per
(LLM × repetition), or, in self-test mode, one per reference and known-bad solution. An
item's id is ``<case>[<variant>]``, e.g. ``clean_split[scripted-standin-r01]``.

Collection is pure (no network, no toolchain probing, ordered lists only), so every
xdist worker collects the same items.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_autopilot.cases.spec import TIER_MEANINGS, TIERS, Case, CaseError, load_case, tier_marker
from pytest_autopilot.core.registry import Registry
from pytest_autopilot.core.stages import STAGES
from pytest_autopilot.llm.cassettes import cassette_path
from pytest_autopilot.llm.profiles import LLMSpec
from pytest_autopilot.runner import Variant

MARKERS = {
    "autopilot": "an autopilot case item (case × LLM × repetition, or a self-test solution)",
    "scripted": "answers come from the scripted stand-in, not a real LLM",
    "human": "answers come from a person (the human baseline, human/<name>), not an LLM",
    "self_test": "runs a reference or known-bad solution through the oracles (no LLM)",
    "coral": "needs a real Coral Dev Board (AUTOPILOT_CORAL=1)",
    "hil": "needs a board attached (hardware in the loop)",
    **{st.marker: f"case of the {st.name} stage ({st.description})" for st in STAGES.values()},
    **{tier_marker(t): f"case of difficulty tier {t} ({TIER_MEANINGS[t]})" for t in TIERS},
}


class CaseFile(pytest.File):
    """A case file: loaded and checked once, then one item per variant."""

    def collect(self):
        from pytest_autopilot.session import SESSION_KEY

        session = self.config.stash[SESSION_KEY]
        try:
            case = load_case(self.path, session.prompts_dir, session.hardware_dir, session.registries)
            session.ctx.cases[session.relative(self.path)] = case  # provenance hashes it: no second load
            if session.rescore_dir is not None and not rescorable(case):  # a reason, not a collection error
                yield NotRescorable.from_parent(self, name=f"{case.name}[rescore]", variant=Variant(case), reason=(
                    f"{session.relative(self.path)}: --autopilot-rescore judges one program per run; this case "
                    f"has steps {[s.name for s in case.spec.steps]}"))
                return
            variants = variants_for(case, session.llms, _repetitions(self, session), session.self_test,
                                    session.rescore_dir, _groups(session), settings=session.settings,
                                    known_strategies=session.registries.strategies)
        except CaseError as exc:  # a line per problem, relative path: the session records it under not_run
            raise self.CollectError(str(exc).replace(str(self.path), session.relative(self.path))) from None
        marks = [pytest.mark.autopilot, getattr(pytest.mark, STAGES[case.spec.stage].marker),
                 getattr(pytest.mark, tier_marker(case.spec.tier)),
                 *(getattr(pytest.mark, name) for name in hardware_markers(case))]
        for variant in variants:
            item = CaseItem.from_parent(self, name=f"{case.name}[{variant.id}]", variant=variant)
            for mark in marks:
                item.add_marker(mark)
            if variant.llm is not None and variant.llm.scripted:
                item.add_marker(pytest.mark.scripted)
            if variant.llm is not None and variant.llm.is_human:
                item.add_marker(pytest.mark.human)
            if variant.self_test:
                item.add_marker(pytest.mark.self_test)
            yield item


HOST_EXECUTORS = ("python", "warm-tensorflow", "warm-pandas")  # run on this machine, whatever board the case names


def hardware_markers(case: Case) -> list[str]:
    """``hil`` when the case needs real hardware: its programs run on (or are flashed to) a board
    without a simulator, or it requires targets; ``coral`` when that is a Coral (an Edge TPU board,
    or the ``coral`` requirement), which is hardware too."""
    board, requires = case.board, case.spec.requires
    on_board = board is not None and "simulator" not in board.capabilities and case.executor not in HOST_EXECUTORS
    coral = "coral" in (*requires.targets, *requires.toolchains) or (on_board and "edgetpu" in board.capabilities)
    return ["hil"] * (on_board or bool(requires.targets) or coral) + ["coral"] * coral


class CaseItem(pytest.Item):
    """One variant of a case: runs it and fails with a one-line reason when it does not pass. The
    controller gets its findings on the call report (``report_extras``, see the session)."""

    def __init__(self, *, variant: Variant, **kwargs):
        super().__init__(**kwargs)
        self.variant = variant
        self.report_extras: dict[str, object] = {}

    def runtest(self) -> None:
        from pytest_autopilot import runner
        from pytest_autopilot.session import RESULT_ATTRIBUTE, SELF_TEST_ATTRIBUTE, SESSION_KEY, dump_result

        session = self.config.stash[SESSION_KEY]
        reports = session.relative(session.report_dir)
        if self.variant.self_test:
            result = runner.run_self_test(session.ctx, self.nodeid, self.variant)
            self.report_extras[SELF_TEST_ATTRIBUTE] = result.to_dict()
            self.user_properties.extend(runner.self_test_properties(result, reports))
            problem = result.problem
        else:
            record = runner.run_variant(session.ctx, self.nodeid, self.variant)
            self.report_extras[RESULT_ATTRIBUTE] = dump_result(record)
            self.user_properties.extend(runner.junit_properties(record, session.relative(self.path), reports))
            problem = runner.outcome_message(record, reports)
        if problem:
            pytest.fail(problem, pytrace=False)

    def reportinfo(self):
        return self.path, None, self.name


class NotRescorable(CaseItem):
    """A multi-step case under --autopilot-rescore: skipped with the reason (deselectable with -k)."""

    def __init__(self, *, reason: str, **kwargs):
        super().__init__(**kwargs)
        self.reason = reason

    def runtest(self) -> None:
        pytest.skip(self.reason)


def rescorable(case: Case) -> bool:
    return len(case.spec.steps) == 1 and case.spec.steps[0].kind == "code"


def _repetitions(case_file: CaseFile, session) -> int:
    """--autopilot-runs; with --autopilot-recorded-only and no --autopilot-runs on the command line
    (an ini ``autopilot_runs`` is a project's sweep size, not a choice to replay less), as many as
    the case's highest recorded repetition (``…-rNN.yaml`` in its cassette folder)."""
    runs = session.settings.get("runs")
    if not session.settings.get("recorded_only") or session.config.getoption("autopilot_runs") is not None:
        return runs
    folder = cassette_path(session.cassettes_dir, f"{case_file.nodeid}::x[x]").parent
    recorded = [int(m.group(1)) for p in folder.glob("*.yaml") if (m := re.search(r"-r(\d+)\.yaml$", p.name))]
    return max([runs, *recorded])


def _groups(session) -> str | None:
    """--autopilot-rescore-groups: a pattern, or a manifest file (relative to the rootdir)."""
    groups = session.settings.get("rescore_groups")
    return str((session.root / groups).resolve()) if groups and groups.endswith((".csv", ".json")) else groups


def strategies_for(case: Case, llm: LLMSpec, settings, known: Registry) -> list[str]:
    """Repair strategies of one (case, model), by the settings' precedence (command line / ini >
    models-file profile > case > stateless)."""
    chosen = list(settings.for_case("repair_strategy", case.spec, llm))
    unknown = [s for s in chosen if s not in known]
    if unknown:
        raise CaseError(f"{case.path}: repair strategy {unknown[0]!r} (from the command line, ini or models file of "
                        f"{llm.model}): {known.unknown(unknown[0])}")
    return list(dict.fromkeys(chosen))


def variants_for(case: Case, llms: list[LLMSpec], runs: int, self_test: bool,
                 archive: Path | None = None, groups: str | None = None, *, settings,
                 known_strategies: Registry) -> list[Variant]:
    if archive is not None:
        from pytest_autopilot.cases.archive import programs

        found = programs(archive, case.name, groups)
        counts: dict[str, int] = {}
        out = []
        for program in found:  # repetitions count per model
            counts[program.model_id] = counts.get(program.model_id, 0) + 1
            out.append(Variant(case, repetition=counts[program.model_id], archive_file=program.path, archived=program))
        return out
    if self_test:
        solutions = case.spec.solutions
        out = [Variant(case, solution_key=k, solution_file=f) for k, f in solutions.reference.items()]
        out += [Variant(case, solution_key=k, solution_file=g.file, why=g.why)
                for k, goods in solutions.also_good.items() for g in goods]
        out += [Variant(case, solution_key=k, solution_file=b.file, expect_pass=False, why=b.why)
                for k, bads in solutions.bad.items() for b in bads]
        return out
    return [Variant(case, llm, rep, strategy=strategy) for llm in llms
            for strategy in strategies_for(case, llm, settings, known_strategies) for rep in range(1, runs + 1)]
