"""The side-by-side comparison page: ``pytest-autopilot compare RUN_A RUN_B --html FILE``.

Two runs (or two prompt versions, models or repair strategies, as ``results.compare`` groups
them) per group side by side: each side's successes, rate and Wilson interval, the change in
points, the test and its verdict. A changed rate is highlighted (red down, green up; a
significant change more strongly), and the prompt templates and case files whose sha256 differs
between the two runs' provenance are listed, so a prompt edit is named next to what it did.
Self-contained and autoescaped like the run page (``results.html``).
"""

from __future__ import annotations

import math
from typing import Any

from pytest_autopilot.results.compare import Comparison
from pytest_autopilot.results.groups import wilson_interval


def changed_files(prov_a: dict[str, Any] | None, prov_b: dict[str, Any] | None) -> list[dict[str, str]]:
    """Case files and prompt templates whose sha256 differs between the two runs (or that one lacks)."""
    def hashes(prov):
        out = {}
        for case, files in ((prov or {}).get("case_hashes") or {}).items():
            if isinstance(files, dict):
                out.update({name: (case, digest) for name, digest in files.items()})
        return out

    a, b = hashes(prov_a), hashes(prov_b)
    rows = []
    for name in sorted(set(a) | set(b)):
        if name in a and name in b and a[name][1] == b[name][1]:
            continue
        state = "only in A" if name not in b else "only in B" if name not in a else "changed"
        rows.append({"file": name, "case": (a.get(name) or b.get(name))[0], "state": state})
    return rows


def _side(successes: int, n: int) -> dict[str, Any]:
    low, high = wilson_interval(successes, n)
    return {"ok": successes, "n": n, "rate": successes / n if n else math.nan, "low": low, "high": high}


def page_context(result: Comparison, prov_a: dict[str, Any] | None, prov_b: dict[str, Any] | None) -> dict[str, Any]:
    rows = []
    for g in result.groups:
        a, b = _side(g.successes_a, g.n_a), _side(g.successes_b, g.n_b)
        change = b["rate"] - a["rate"] if g.n_a and g.n_b else math.nan
        direction = "same" if not change or change != change else "down" if change < 0 else "up"
        test = f"McNemar {g.a_only}:{g.b_only} of {g.pairs} pairs" if g.paired else "Fisher (unpaired)"
        rows.append({"label": g.label, "a": a, "b": b, "change": change, "direction": direction, "test": test,
                     "p": g.p_value, "verdict": g.verdict, "significant": g.significant})
    return {"a_label": result.a_label, "b_label": result.b_label, "metric": result.metric, "alpha": result.alpha,
            "by": ", ".join(result.by) or "nothing (all runs)", "rows": rows, "only_in_a": result.only_in_a,
            "only_in_b": result.only_in_b, "notes": result.notes, "files": changed_files(prov_a, prov_b),
            "changed": sum(r["direction"] != "same" for r in rows), "regressions": [g.label for g in result.regressions]}


def render_comparison(result: Comparison, prov_a: dict[str, Any] | None = None, prov_b: dict[str, Any] | None = None) -> str:
    from pytest_autopilot.results.html import _environment

    return _environment().get_template("compare.html.j2").render(**page_context(result, prov_a, prov_b))
