"""One definition of each shared helper (core/util.py), used where the copies were; the
modules the restructure left behind are gone; the results modules import without a cycle."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from pytest_autopilot.core import util
from pytest_autopilot.llm import profiles
from pytest_autopilot.loop.normalise import normalise_error
from pytest_autopilot.results import frames, groups, html, report, stats

PACKAGE = Path(__file__).parents[2] / "pytest_autopilot"
HELPERS = {"atomic_write", "finite", "fmt_num", "strip_ansi", "validation_line", "listed", "short"}


def _defs(tree: ast.AST) -> set[str]:
    return {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def test_each_shared_helper_is_defined_once():
    copies = {}
    for path in PACKAGE.rglob("*.py"):
        rel = str(path.relative_to(PACKAGE))
        if rel == "core/util.py":
            continue
        text = path.read_text()
        names = {d.lstrip("_") for d in _defs(ast.parse(text))} & HELPERS
        if r"\x1b\[[0-9;?]*[A-Za-z]" in text:
            names.add("ANSI pattern")
        if "def _atomic_write" in text or ("mkstemp" in text and "os.replace" in text):
            names.add("atomic write")
        if names:
            copies[rel] = sorted(names)
    assert copies == {}


def test_report_and_page_keep_their_spellings_of_a_missing_number():
    assert report._rate_ci(float("nan"), 0, 1) == "n/a" and report._rate_ci(0.5, 0.1, 0.9) == "0.50 [0.10-0.90]"
    assert (html.fmt_digits(None), html.fmt_digits(1234.5, 0), html.fmt_rate("x"), html.fmt_usd(float("inf"))) == (
        "–", "1,234", "n/a", "unknown")
    assert html.fmt_usd(0.01) == "$0.0100" and util.fmt_num(2.0, ".1f", suffix="s", prefix="~") == "~2.0s"


def test_models_file_errors_are_one_validation_line(tmp_path):
    path = tmp_path / "autopilot-models.yaml"
    path.write_text("models:\n  ollama/phi4:\n    profiles:\n      p: {temprature: 0.1}\n")
    with pytest.raises(profiles.LLMConfigError) as err:
        profiles.load_models_file(path)
    assert str(err.value) == (f"{path}: field models.ollama/phi4.profiles.p.temprature: unknown field; "
                              "remove it or check its spelling")


def test_error_text_loses_terminal_escapes_and_the_checkout_path():
    checkout = Path(__file__).resolve().parents[2]
    text = f'\x1b[31mTraceback\x1b[0m\n  File "{checkout}/cases/dp/x.py", line 3\n'
    assert normalise_error(text, 1000) == 'Traceback\n  File "<REPO>/cases/dp/x.py", line 3'


def test_the_modules_that_had_copies_use_the_shared_helpers():
    """Where a copy was, the module now calls util's helper itself (not a wrapper or a rename):
    replacing one of these with a local function fails here."""
    from pytest_autopilot.cases import boards
    from pytest_autopilot.executors import simulators

    users = {report: ("atomic_write", "finite", "fmt_num"), html: ("finite", "fmt_num"),
             simulators: ("strip_ansi",), boards: ("validation_line",), profiles: ("validation_line",)}
    for module, names in users.items():
        for name in names:
            assert getattr(module, name) is getattr(util, name), f"{module.__name__}.{name} is not core.util's"


def test_atomic_write_replaces_the_file_whole_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "report.json"
    util.atomic_write(target, "old")
    monkeypatch.setattr(util.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        util.atomic_write(target, "new")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_stats_is_one_namespace_over_frames_and_groups():
    for name in stats.__all__:
        assert getattr(stats, name) is getattr(frames, name, None) or getattr(stats, name) is getattr(groups, name)
    assert stats.runs_frame is frames.runs_frame and stats.group_stats is groups.group_stats
    with pytest.raises(TypeError, match="run records"):
        stats.summarise(stats.runs_frame([]))


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside functions."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
    return out


def test_results_modules_import_without_a_cycle():
    results = PACKAGE / "results"
    graph = {p.stem: {m.rsplit(".", 1)[-1] for m in _imports(p) if re.match(r"pytest_autopilot\.results\.\w+$", m)}
             for p in results.glob("*.py") if p.stem != "__init__"}
    graph = {k: {d for d in v if d in graph and d != k} for k, v in graph.items()}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(d == goal or (d not in seen and reaches(d, goal, seen | {d})) for d in graph[start])

    assert [m for m in graph if reaches(m, m, set())] == []
    assert "baseline" not in graph["report"] | graph["html"]  # is_baseline lives in provenance
