"""What a failed attempt is called and what the model is told about it: the failure category of
an execution and verdict, the feedback text of a repair prompt, and the note for an answer the
token limit cut (``finish_reason: length``)."""

from __future__ import annotations

from pytest_autopilot.core.records import Category, ExecResult, Verdict, build_failure_category


def cut_feedback(answer, step, closed: bool) -> str:
    """What happened to an answer the token limit cut, and what to do instead. ``closed``: a complete
    block was found before the cut (and was run as it was)."""
    used, limit = answer.completion_tokens, answer.max_tokens
    if used is not None and limit is not None and used < limit:
        at = f"after {used} tokens, when the model's context was full"
    else:
        at = f"at {used or limit} tokens (the max_tokens limit)" if (used or limit) else "at the token limit"
    language, wanted = step.language, "program" if step.kind == "code" else step.language.upper()
    what = (f"after its ```{language} block, which was run as it was" if closed
            else f"before it was complete, so its ```{language} block was never closed")
    return (f"Your answer was cut off {at} {what}. Answer with a shorter, complete {wanted} in one "
            f"```{language} block: leave out explanations, comments and anything the task does not ask for.")


def failure_category(execution: ExecResult | None, strict: Verdict) -> str:
    if execution is not None:
        if execution.timed_out:
            return Category.TIMEOUT
        if execution.limit_hit:
            return Category.RESOURCE_LIMIT
        if execution.returncode != 0:
            if execution.isolation.get("phase") == "build":
                return build_failure_category(execution.stdout + "\n" + execution.stderr)
            return Category.SYNTAX_ERROR if "SyntaxError" in execution.stderr else Category.RUNTIME_ERROR
    return strict.category or Category.SEMANTIC_MISMATCH


def feedback_text(execution: ExecResult | None, strict: Verdict) -> str:
    parts = []
    if execution is not None:
        if execution.timed_out:
            parts.append(f"The program was killed after {execution.isolation.get('timeout_s', 'its')} s time limit.")
        elif execution.limit_hit:
            parts.append(f"The program hit the {execution.limit_hit} resource limit.")
        if execution.returncode not in (0, None):
            parts.append(f"Exit code {execution.returncode}.")
        if execution.stderr.strip():
            parts.append("stderr:\n" + execution.stderr.strip())
        if execution.stdout.strip() and execution.returncode != 0:
            parts.append("stdout:\n" + execution.stdout.strip())
    summary = strict.summary(omit_restated=execution is not None)  # the run's own exit and stderr are above
    if summary:
        parts.append("The output was checked and is wrong:\n" + summary)
    return "\n".join(parts)
