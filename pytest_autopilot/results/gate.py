"""The gate: which exit status a sweep or a comparison ends with, and the one line saying why.

Exit statuses (pytest's own 2 interrupted, 3 internal error, 4 usage error, 5 no tests pass
through unchanged):

* ``0`` (:data:`EXIT_OK`) -- every run has a verdict and the gate passed;
* ``1`` (:data:`EXIT_MODEL_FAILED`) -- the models failed the strict oracle: a run failed
  (``--autopilot-fail-on strict``, the default), or the strict success rate is under
  ``--autopilot-fail-under``; for ``compare``: a significant regression or a drop over ``--max-drop``;
* ``6`` (:data:`EXIT_SETUP`) -- harness or set-up trouble, so the results are not a model's: a run
  stopped by an error (cassette miss, bad cassette, harness or LLM API error), a crashed or
  incomplete run, a case file that could not be loaded; for ``compare``: "not comparable".

Set-up trouble wins over model failures: a gate cannot judge a model on runs it never did.
``--autopilot-fail-on errors`` makes model failures a result (exit 0) and fails only on set-up
trouble; ``never`` always exits 0 (pytest's own statuses aside).

The threshold (``settings.Threshold``: ``rate``, ``per_case``) is parsed with the options, in settings.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pytest_autopilot.core.records import RunStatus
from pytest_autopilot.results.frames import error_category, finished

EXIT_OK = 0
EXIT_MODEL_FAILED = 1
EXIT_SETUP = 6


def setup_problems(records: Iterable, not_run: int = 0, lost: int = 0, failed_without_record: int = 0) -> list[str]:
    """What makes a set of runs set-up trouble rather than a model's result (empty when nothing);
    ``lost``: runs that died with a worker elsewhere, known only as crashed node ids."""
    errors: dict[str, int] = {}
    crashed, incomplete = lost, 0
    for rec in records:
        category = error_category(rec)
        if category is not None:
            errors[category] = errors.get(category, 0) + 1
        crashed += rec.status == RunStatus.CRASHED
        incomplete += rec.status == RunStatus.INCOMPLETE
    problems = [f"{n} run(s) stopped by {category}" for category, n in sorted(errors.items())]
    problems += [f"{crashed} run(s) crashed"] * bool(crashed) + [f"{incomplete} run(s) incomplete"] * bool(incomplete)
    if failed_without_record:
        problems.append(f"{failed_without_record} case item(s) failed before their run was recorded")
    if not_run:
        problems.append(f"{not_run} case file(s) could not be loaded")
    return problems


def _rates(records: list, per_case: bool) -> list[tuple[str, int, int]]:
    """(label, strict successes, finished runs): one row pooled, or one per (case, model, strategy)."""
    groups: dict[str, list[int]] = {}
    for rec in records:
        if not finished(rec):
            continue
        label = f"{rec.case} × {rec.model_id} × {rec.strategy}" if per_case else "all runs"
        counts = groups.setdefault(label, [0, 0])
        counts[0] += bool(rec.strict_success)
        counts[1] += 1
    return [(label, ok, n) for label, (ok, n) in sorted(groups.items())]


def sweep_gate(records: Iterable, fail_on: str, fail_under: Any,
               problems: list[str]) -> tuple[int, str | None]:
    """The exit status of a sweep's runs and the line saying why (None: nothing to say)."""
    records = list(records)
    if fail_on == "never":
        return EXIT_OK, None
    if problems:
        return EXIT_SETUP, (f"gate: set-up trouble, not a model result (exit {EXIT_SETUP}): " + "; ".join(problems))
    if fail_on == "errors":  # a threshold set too (say in the ini file) is not applied: say so, never silently
        return EXIT_OK, (f"gate: --autopilot-fail-on errors: model failures are a result, --autopilot-fail-under "
                         f"{fail_under} not applied (exit {EXIT_OK})" if fail_under is not None else None)
    if fail_under is None:
        failed = sum(not r.strict_success for r in records)
        if failed:
            return EXIT_MODEL_FAILED, (f"gate: {failed} of {len(records)} run(s) failed the strict oracle "
                                       f"(exit {EXIT_MODEL_FAILED}; --autopilot-fail-on errors makes that a result)")
        return EXIT_OK, None
    under = [(label, ok, n) for label, ok, n in _rates(records, fail_under.per_case) if ok < fail_under.rate * n]
    scope = "per case" if fail_under.per_case else "pooled"
    if under:
        shown = ", ".join(f"{label} {ok}/{n} = {ok / n:.3f}" for label, ok, n in under[:5])
        more = f" (+{len(under) - 5} more)" if len(under) > 5 else ""
        return EXIT_MODEL_FAILED, (f"gate: strict success under --autopilot-fail-under {fail_under} ({scope}): "
                                   f"{shown}{more} (exit {EXIT_MODEL_FAILED})")
    return EXIT_OK, f"gate: strict success at or above --autopilot-fail-under {fail_under} ({scope}) (exit {EXIT_OK})"


def session_status(records: list, fail_on: str, fail_under: Any, not_run: int, lost: int,
                   failed_without_record: int, other_tests_failed: bool) -> tuple[int, str | None]:
    """A pytest session's exit status (when pytest itself says 0 or 1) and its gate line. Failed
    tests that are not case items (a project's own tests) keep pytest's exit 1 unless set-up
    trouble (6) or ``never`` decides."""
    problems = setup_problems(records, not_run, lost, failed_without_record)
    status, line = sweep_gate(records, fail_on, fail_under, problems)
    if other_tests_failed and status == EXIT_OK and fail_on != "never":
        return EXIT_MODEL_FAILED, "gate: tests that are not case items failed (exit 1)"
    return status, line


def compare_status(comparison, fail_on_regression: bool, max_drop: float | None) -> tuple[int, list[str]]:
    """The exit status of ``compare`` and the lines saying why. Without a gate (neither
    ``--fail-on-regression`` nor ``--max-drop``) it is 0: the comparison only informs."""
    if not (fail_on_regression or max_drop is not None):
        return EXIT_OK, []
    if comparison.not_comparable:
        return EXIT_SETUP, [f"gate: not comparable (exit {EXIT_SETUP}): " + "; ".join(comparison.not_comparable)]
    lines = []
    if fail_on_regression and (comparison.regressions or comparison.pooled_regression):
        lines.append(f"gate: significant regression (exit {EXIT_MODEL_FAILED})")
    dropped = comparison.drops_over(max_drop) if max_drop is not None else []
    if dropped:
        shown = ", ".join(f"{g.label} {g.rate_a:.3f} -> {g.rate_b:.3f}" for g in dropped[:5])
        lines.append(f"gate: {len(dropped)} group(s) dropped by more than --max-drop {max_drop:g}: {shown}"
                     + (" ..." if len(dropped) > 5 else "") + f" (exit {EXIT_MODEL_FAILED})")
    return (EXIT_MODEL_FAILED, lines) if lines else (EXIT_OK, [f"gate: passed (exit {EXIT_OK})"])
