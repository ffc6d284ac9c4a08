"""What the repair loop tells the model (issue 22): a cut answer is named as cut, an excerpt is
never shown as code, a lone language word on a fence's first line is its tag, and a build's
first errors survive the bound. Programs run in the real sandbox; C builds run the real gcc."""

from __future__ import annotations

import re
import subprocess

import pytest

from pytest_autopilot.cases.spec import load_case
from pytest_autopilot.core.records import Category, ExecResult, Verdict
from pytest_autopilot.executors.local import PythonExecutor
from pytest_autopilot.executors.sandbox import Limits, Sandbox
from pytest_autopilot.loop.extract import blocks, extract_code
from pytest_autopilot.loop.repair import Answer, LoopSettings, RepairLoop
from pytest_autopilot.loop.registries import Registries
from pytest_autopilot.oracles import exit_check

RIGHT = "```python\nopen('out.txt', 'w').write('42')\n```"
# an answer the token limit cut inside its code block: the closing fence never came
CUT = "Here is the program:\n\n```python\nimport os\n\ndef write_answer():\n    with open('out.txt', 'w') as fh:\n        fh.wr"


@pytest.fixture
def packaged_case(case, tmp_path):
    """The toy case with the packaged repair and feedback templates (what real cases get)."""
    for name in ("repair.j2", "feedback.j2"):
        (tmp_path / "prompts/common" / name).unlink()
    return load_case(tmp_path / "case.yaml", tmp_path / "prompts")


def _loop(case, tmp_path, answers, oracle, strategy="stateless", code_chars=12_000, executor=None):
    asked = []

    def ask(messages, meta):
        asked.append([dict(m) for m in messages])
        answer = answers[len(asked) - 1]
        return answer if isinstance(answer, Answer) else Answer(answer, finish_reason="stop")

    registry = Registries()
    registry.oracle("answer_42", oracle)
    sandbox = Sandbox(Limits(timeout_s=30), base_dir=tmp_path / "work")
    settings = LoopSettings(3, 2000, "first", Limits(timeout_s=30), strategy, 0, code_chars)
    result = RepairLoop(case, ask, executor or PythonExecutor(sandbox), settings, registries=registry).run()
    return result, asked


def _outside_fences(prompt: str) -> str:
    """The prompt with every fenced block's content removed (what is not shown as code or output)."""
    for _, body in blocks(prompt):
        prompt = prompt.replace(body, "")
    return prompt


def test_a_cut_answer_is_flagged_counted_and_told_what_happened(packaged_case, tmp_path, answer_42):
    cut = Answer(CUT, prompt_tokens=40, completion_tokens=3072, finish_reason="length", max_tokens=3072)
    result, asked = _loop(packaged_case, tmp_path, [cut, RIGHT], answer_42)
    first, second = result.attempts
    assert (first.finish_reason, first.answer_truncated, first.category) == ("length", True, Category.ANSWER_TRUNCATED)
    assert (second.finish_reason, second.answer_truncated) == ("stop", False) and result.strict_success
    repair = asked[1][0]["content"]
    assert "Your answer was cut off at 3072 tokens (the max_tokens limit) before it was complete" in repair
    assert "shorter, complete program" in repair
    assert "no ```python fenced block" not in repair  # the model did write one; the limit cut it


def test_a_cut_answer_whose_block_was_complete_is_run_and_the_cut_still_said(packaged_case, tmp_path, answer_42):
    wrong = "```python\nopen('out.txt', 'w').write('41')\n```\nThis program opens the file and wri"
    cut = Answer(wrong, completion_tokens=3072, finish_reason="length", max_tokens=3072)
    result, asked = _loop(packaged_case, tmp_path, [cut, RIGHT], answer_42)
    assert result.attempts[0].code is not None and result.attempts[0].category == Category.SEMANTIC_MISMATCH
    repair = asked[1][0]["content"]
    assert "cut off at 3072 tokens (the max_tokens limit) after its ```python block, which was run as it was" in repair
    assert "out.txt holds '41', expected 42" in repair


def test_a_non_code_answer_is_quoted_outside_any_fence_with_the_cut_marked_outside(packaged_case, tmp_path, answer_42):
    long_cut = Answer(CUT + "ite('4" + "\n    # padding line\n" * 200, completion_tokens=3072,
                      finish_reason="length", max_tokens=3072)
    _, asked = _loop(packaged_case, tmp_path, [long_cut, RIGHT], answer_42)
    repair = asked[1][0]["content"]
    marker = re.search(r"\[\.\.\. \d+ characters omitted \.\.\.\]", repair)
    assert marker, repair
    assert not any("omitted" in body or "write_answer" in body for _, body in blocks(repair)), repair
    assert marker.group(0) in _outside_fences(repair)
    assert "> def write_answer():" in repair  # the answer's text, quoted line by line, not as code


def test_code_over_the_bound_is_quoted_never_fenced(packaged_case, tmp_path, answer_42):
    huge = "```python\n" + "x = 1  # padding\n" * 500 + "open('out.txt', 'w').write('41')\n```"
    _, asked = _loop(packaged_case, tmp_path, [huge, RIGHT], answer_42, code_chars=2000)
    repair = asked[1][0]["content"]
    assert not any("padding" in body for _, body in blocks(repair)), "an excerpt of the code sat in a fence"
    assert "characters omitted ...]" in _outside_fences(repair) and "> open('out.txt', 'w').write('41')" in repair


def test_conversation_shortens_the_models_own_turn_outside_its_code_block(packaged_case, tmp_path, answer_42):
    huge = "```python\n" + "x = 1  # padding\n" * 500 + "open('out.txt', 'w').write('41')\n```"
    _, asked = _loop(packaged_case, tmp_path, [huge, RIGHT], answer_42, strategy="conversation", code_chars=2000)
    own = asked[1][1]
    assert own["role"] == "assistant" and len(own["content"]) <= 2000
    assert not any("omitted" in body for _, body in blocks(own["content"]))
    assert "characters omitted ...]" in own["content"]


def test_a_lone_language_word_on_an_untagged_fence_is_its_tag(packaged_case, tmp_path, answer_42):
    extracted = extract_code("Here:\n```\npython\nprint('hi')\n```", "python")
    assert extracted.text == "print('hi')\n"
    assert "first line 'python' was taken as its language tag" in extracted.note
    assert extract_code("```\nPython3\nx = 1\n```", "python").text == "x = 1\n"
    assert extract_code("```\nprint(1)\n```", "python").text == "print(1)\n"  # other untagged code is untouched
    result, _ = _loop(packaged_case, tmp_path, ["```\npython\nopen('out.txt', 'w').write('42')\n```"], answer_42)
    assert result.strict_success and result.attempts[0].code == "open('out.txt', 'w').write('42')\n"


class GccBuild:
    """A real C build (host gcc, compile and link) reported as a firmware executor reports one:
    ``isolation["phase"] == "build"``. The code is this test's own, so it runs outside the sandbox."""

    def __init__(self, sandbox):
        self.sandbox = sandbox

    def execute(self, code, workdir, files, limits) -> ExecResult:
        (workdir / "main.c").write_text(code)
        done = subprocess.run(["gcc", "-o", "main", "main.c"], cwd=workdir, capture_output=True, text=True, timeout=60)
        return ExecResult(done.returncode, done.stdout, done.stderr, 0.1, isolation={"phase": "build"})


def _c_with_errors(first: str, warnings: int) -> str:
    """A C file: ``warnings`` warnings, then its first error, then many later errors."""
    noise = "".join(f"#warning padding warning number {i}\n" for i in range(warnings))
    later = "".join(f"int e{i}(void) {{ return missing_{i}; }}\n" for i in range(60))
    return f"{noise}{first}\n{later}int main(void) {{ return 0; }}\n"


@pytest.mark.parametrize("warnings", [6, 30], ids=["few-warnings-first", "many-warnings-first"])
def test_a_failed_build_keeps_its_first_errors(packaged_case, tmp_path, warnings):
    from tests.loop.conftest import CASE

    (tmp_path / "c_case.yaml").write_text(CASE.replace("prompt: task.j2", "prompt: task.j2\n    language: c"))
    c_case = load_case(tmp_path / "c_case.yaml", tmp_path / "prompts")
    first = "int f(int a);\nint g(void) { return f(1, 2); }"  # too many arguments to function 'f'
    code = "```c\n" + _c_with_errors(first, warnings) + "```"
    sandbox = Sandbox(Limits(timeout_s=30), base_dir=tmp_path / "work")
    result, asked = _loop(c_case, tmp_path, [code, code, code], _builds, executor=GccBuild(sandbox))
    stderr = result.attempts[0].execution.stderr
    assert "too many arguments to function" in stderr and len(stderr) > 3 * 2000  # long: the bound cuts it
    repair = asked[1][0]["content"]
    assert "too many arguments to function" in repair, "the first error was trimmed away"
    assert "characters omitted ...] (the rest of the output)" in _outside_fences(repair)
    assert ("(before the first error)" in _outside_fences(repair)) == (warnings > 6)
    assert result.attempts[0].category == Category.COMPILE_ERROR


def _builds(ctx):
    return Verdict.from_checks("answer_42", [exit_check(ctx.execution)])


def test_a_cut_json_answer_is_asked_for_a_complete_json_block(case, tmp_path, answer_42):
    from tests.loop.conftest import CASE

    (tmp_path / "plan.yaml").write_text(CASE.replace("prompt: task.j2", "prompt: task.j2\n    kind: json\n    language: json"))
    plan = load_case(tmp_path / "plan.yaml", tmp_path / "prompts")
    cut = Answer('```json\n{"operations": [{"name": "drop_dupl', completion_tokens=3072, finish_reason="length",
                 max_tokens=3072)
    result, asked = _loop(plan, tmp_path, [cut, cut, cut], answer_42)
    assert [a.category for a in result.attempts] == [Category.ANSWER_TRUNCATED] * 3
    assert "Answer with a shorter, complete JSON in one ```json block" in asked[1][0]["content"]
