"""Fenced-code extraction (loop/extract.py): the block's content as CommonMark defines it, and
nothing else changed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pytest_autopilot.loop.extract import NoCode, blocks, extract_code, extract_json

LIST_ITEM = """\
Here is the plan:

1. Read the data and filter it:

   ```python
   import math

   def rms(xs):
       return math.sqrt(sum(x * x for x in xs) / len(xs))

   print(rms([3, 4]))
   ```

2. Run it.
"""


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_a_fence_inside_a_list_item_gives_runnable_code():
    got = extract_code(LIST_ITEM, "python")
    assert got.text == (
        "import math\n\ndef rms(xs):\n    return math.sqrt(sum(x * x for x in xs) / len(xs))\n\nprint(rms([3, 4]))\n")
    result = _run(got.text)
    assert result.returncode == 0, result.stderr  # was: IndentationError, blamed on the model
    assert result.stdout.strip() == "3.5355339059327378"
    assert "fence indented 3 column(s)" in got.note


def test_a_three_space_fence_loses_at_most_three_spaces_per_line():
    answer = "   ```py\n   x = 1\n  y = 2\nz = 3\n     if x:\n         pass\n   ```\n"
    assert extract_code(answer, "python").text == "x = 1\ny = 2\nz = 3\n  if x:\n      pass\n"


def test_deeper_indentation_of_the_content_is_kept():
    answer = ("- step\n\n  ```python\n  def f():\n      if True:\n          return 1\n  print(f())\n  ```\n")
    code = extract_code(answer, "python").text
    assert code == "def f():\n    if True:\n        return 1\nprint(f())\n"
    assert _run(code).stdout.strip() == "1"


def test_a_nested_list_fence_and_a_tab_indented_fence():
    nested = "1. a\n   - b\n\n     ```python\n     for i in range(2):\n         print(i)\n     ```\n"
    assert extract_code(nested, "python").text == "for i in range(2):\n    print(i)\n"
    tabbed = "\t```python\n\tprint(1)\n\t\tprint(2)\n\t```\n"  # a tab is 4 columns
    assert extract_code(tabbed, "python").text == "print(1)\n\tprint(2)\n"


def test_an_unindented_fence_is_never_rewritten():
    body = "  leading = 'spaces kept'\n\tx = '\\t'\r\nprint(leading)   \n\n\n"
    got = extract_code(f"text\n```python\n{body}```\nmore", "python")
    assert got.text == body and got.note == ""
    # the same for untagged blocks and the note they get
    got = extract_code(f"```\n{body}```", "python")
    assert got.text == body and got.note == "untagged fenced block used"


def test_indented_blocks_and_the_policy_note_together():
    answer = ("1. first\n\n   ```python\n   print(1)\n   ```\n\n2. second\n\n   ```python\n"
              "   print(22)\n   ```\n")
    got = extract_code(answer, "python", "largest")
    assert got.text == "print(22)\n"
    assert got.note.startswith("2 python blocks; policy 'largest' took block 2; fence indented 3")
    assert [body for _, body in blocks(answer)] == ["print(1)\n", "print(22)\n"]
    with pytest.raises(NoCode, match="2 ```python blocks"):
        extract_code(answer, "python", "reject")


def test_indented_json_and_empty_blocks():
    answer = '- here:\n\n  ```json\n  {"a": [1,\n    2]}\n  ```\n'
    assert extract_json(answer) == ({"a": [1, 2]}, "```json block")
    with pytest.raises(NoCode, match="block is empty"):
        extract_code("   ```python\n   \n   ```\n", "python")
