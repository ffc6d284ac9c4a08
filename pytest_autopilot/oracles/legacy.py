"""The paper's own success checks, kept so every report can show silent failures: runs the
original pipeline counted as successes that the strict oracle rejects. A stage names its
check in ``core.stages`` (by its name in ``oracles.BUILTIN_LEGACY``); a step may override it with
``legacy:``."""

from __future__ import annotations

from pytest_autopilot.core.records import Category, Check, ExecResult, Verdict, build_failure_category

LEGACY_MARKERS = ("error:", "exception:", "traceback:", "failed:")


def legacy_verdict(execution: ExecResult | None) -> Verdict:
    """The original's check, exactly: return code 0 and none of the markers (with their colon) in
    ``(stdout + stderr).lower()`` -- so "Error opening video file" and then ``exit()`` passes.
    Where the sandbox cut the captured output, markers past the cut cannot be seen: the detail says so."""
    if execution is None:
        return Verdict.from_checks("legacy", [Check("answer_parsed", True)])
    output = (execution.stdout + execution.stderr).lower()
    checks = [Check("exit_code_0", execution.returncode == 0, f"exit code {execution.returncode}")]
    found = [m for m in LEGACY_MARKERS if m in output]
    cut = "; the captured output was cut at the sandbox's limit" if execution.output_truncated else ""
    checks.append(Check("no_error_markers", not found, ", ".join(found) + cut))
    return Verdict.from_checks("legacy", checks)


def legacy_compiles(execution: ExecResult | None) -> Verdict:
    """The paper's ArdSG success criterion: the sketch compiles (nothing else is looked at)."""
    build = (execution.isolation or {}).get("build", {}) if execution is not None else {}
    ok = execution is not None and build.get("returncode") == 0 and not build.get("timed_out")
    detail = "" if ok else (f"build exit code {build.get('returncode')}" if build else "nothing was built")
    category = None if ok else build_failure_category(execution.stdout + "\n" + execution.stderr) if execution else Category.COMPILE_ERROR
    return Verdict.from_checks("legacy", [Check("compiles", ok, detail)], category)
