"""The toy case the loop tests drive: write 42 to out.txt, judged by ``answer_42``."""

from __future__ import annotations

import pytest

from pytest_autopilot.cases.spec import load_case
from pytest_autopilot.core.records import Check, Verdict

CASE = """\
stage: DP
description: write the answer
steps:
  - name: code
    prompt: task.j2
    oracle: {name: answer_42}
solutions:
  reference: {code: ref.py}
standin:
  - {code: [ref]}
"""


def _answer_42(ctx) -> Verdict:
    path = ctx.workdir / "out.txt"
    text = path.read_text() if path.is_file() else None
    return Verdict.from_checks("answer_42", [Check("value", text == "42", f"out.txt holds {text!r}, expected 42")])


@pytest.fixture
def case(tmp_path):
    """The loaded toy case, with its task, repair and feedback prompts, in tmp_path."""
    prompts = tmp_path / "prompts"
    (prompts / "common").mkdir(parents=True)
    (prompts / "task.j2").write_text("Write 42 to out.txt.")
    (prompts / "common/repair.j2").write_text("{{ task }}\nPREVIOUS:\n{{ previous_answer }}\nERROR:\n{{ error }}")
    (prompts / "common/feedback.j2").write_text("FEEDBACK {{ attempt }}:\n{{ error }}")
    (tmp_path / "ref.py").write_text("open('out.txt', 'w').write('42')\n")
    (tmp_path / "case.yaml").write_text(CASE)
    return load_case(tmp_path / "case.yaml", prompts)


@pytest.fixture(scope="session")
def answer_42():
    """The toy case's oracle: out.txt must hold 42."""
    return _answer_42
