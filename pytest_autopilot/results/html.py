"""One self-contained HTML page per run: ``reports/<run-id>/report.html``.

No JavaScript, no external resources: the charts are inline SVG drawn by the templates in
``pytest_autopilot/templates/`` from geometry computed here (no plotting dependency), the
drill-down uses ``<details>``/``<summary>``. Jinja2 autoescaping is on for everything: generated
code, prompts, outputs, case and model names all reach the page as text, never as markup (this
module never marks a string safe).

Sections: summary per (case, model, repair strategy) with Wilson intervals (chart and table),
unfinished runs and repeated answers, pass@k / pass^k, cumulative success by attempt (one curve
per group), cost and tokens vs success, silent-failure rate, failure taxonomy, distributions of
tokens / cost / latency, a paper baseline side by side (optional), and every run's attempts
(prompt, response, code, execution, error, oracle checks). Rates are over the finished runs of a
group (crashed, incomplete and error runs have no verdict; a group holding them is listed at
the top as set-up trouble, and a group with no verdict at all shows what stopped it, never a 0%
rate). Rows from the scripted stand-in carry the label :data:`SCRIPTED_LABEL` wherever they appear.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from typing import Any

import jinja2

from pytest_autopilot.core.records import RunRecord
from pytest_autopilot.core.stages import report_order
from pytest_autopilot.core.util import finite, fmt_num
from pytest_autopilot.results import stats
from pytest_autopilot.results.compare import compare
from pytest_autopilot.results.links import run_anchor
from pytest_autopilot.results.provenance import is_baseline
from pytest_autopilot.results.study import study_rows
from pytest_autopilot.results.tiers import tier_groups, tier_label

SCRIPTED_LABEL = "scripted stand-in (not an LLM)"
HUMAN_LABEL = "human baseline (a person, not an LLM)"
BASELINE_LABEL = "paper baseline (weak success check)"
CLIP = 50_000  # characters of one text block (prompt, code, output) shown in the page
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22")
CATEGORY_COLOURS = dict(zip(stats.TAXONOMY, (
    "#9467bd", "#8c564b", "#d62728", "#ff7f0e", "#e377c2", "#bcbd22", "#1f77b4", "#17becf", "#7f7f7f",
    "#aec7e8", "#393b79", "#c7c7c7")))
PASS_KS = (1, 2, 3, 5, 10)
# Attempt curves: (stroke width, dash pattern) per repair strategy; the paper baseline is dash-dotted.
STRATEGY_STROKES = {"stateless": (5.0, ""), "conversation": (3.0, "8 4"), "resample": (1.6, "2 3")}
STROKE_WORDS = {"stateless": "wide solid", "conversation": "dashed", "resample": "thin dotted"}
DEFAULT_STROKE = (2.0, "")  # groups pooling several strategies
BASELINE_DASH = "10 4 2 4"


# ---------------------------------------------------------------------------------------------
# formatting (jinja filters): the page's own spellings of a missing number


def fmt_digits(value: Any, digits: int = 2) -> str:
    return fmt_num(value, f",.{digits}f", missing="–")


def fmt_rate(value: Any) -> str:
    return fmt_num(value, ".3f", missing="n/a")


def fmt_usd(value: Any) -> str:
    return fmt_num(value, ".4f", missing="unknown", prefix="$")


def clip(text: Any, limit: int = CLIP) -> str:
    text = "" if text is None else str(text)
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n… [clipped: {len(text) - limit} more characters in results.json]"


# ---------------------------------------------------------------------------------------------
# rows


def _tags(g: stats.GroupStats) -> list[str]:
    tags = []
    if g.scripted:
        tags.append(SCRIPTED_LABEL)
    if g.human:
        tags.append(HUMAN_LABEL)
    if g.baseline:
        tags.append(BASELINE_LABEL)
    return tags


def no_verdict(g: stats.GroupStats) -> str:
    """What a group holds without a verdict (errors by category, crashed, incomplete runs), or ''."""
    parts = [f"{n} {category}" for category, n in g.error_categories.items()]
    parts += [f"{n} {what}" for what, n in (("crashed", g.crashed), ("incomplete", g.incomplete)) if n]
    return ", ".join(parts)


def _row(g: stats.GroupStats, label: str | None = None) -> dict[str, Any]:
    ks = [k for k in PASS_KS if k <= g.finished]
    if g.finished not in ks and g.finished > 0:
        ks.append(g.finished)
    return {
        "label": label or g.label,
        "stage": g.stage,
        "tags": _tags(g),
        "scripted": g.scripted,
        "baseline": g.baseline,
        "g": g,
        "pass_at": [(k, g.pass_at_k[k]) for k in ks],
        "pass_hat": [(k, g.pass_hat_k[k]) for k in ks],
        "final_total": sum(g.final_categories.values()),
        "no_verdict": no_verdict(g),
    }


# ---------------------------------------------------------------------------------------------
# chart geometry (drawn by templates/charts.html.j2)


def _nice_ticks(top: float, count: int = 5) -> list[float]:
    if not top or top <= 0 or not math.isfinite(top):
        return [0.0, 1.0]
    raw = top / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    n = math.ceil(top / step - 1e-9)
    return [round(i * step, 10) for i in range(n + 1)]


def _tick_label(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:g}"
    return f"{value:.3g}"


def rates_chart(rows: list[dict]) -> dict[str, Any]:
    """Horizontal interval chart: strict rate + Wilson 95% CI (bar, whisker) and legacy rate."""
    left, plot_w, right, top, row_h = 330, 360, 190, 34, 36
    items = []
    for i, row in enumerate(rows):
        g = row["g"]
        y = top + i * row_h + row_h / 2
        x = lambda v: left + plot_w * (v if finite(v) is not None else 0)  # noqa: E731
        items.append({
            "label": row["label"], "tags": row["tags"], "y": y, "baseline": g.baseline,
            "bar_w": x(g.rate) - left, "x_rate": x(g.rate), "x_lo": x(g.ci_low), "x_hi": x(g.ci_high),
            "x_legacy": x(g.legacy_rate),
            "text": (f"{g.rate:.2f} [{fmt_digits(g.ci_low)}–{fmt_digits(g.ci_high)}] n={g.finished}" if g.finished
                     else f"no verdict: {row['no_verdict']}" if row["no_verdict"] else "no finished run"),
            "title": f"{row['label']}: strict {g.successes}/{g.finished} finished runs = {fmt_rate(g.rate)}, "
                     f"Wilson 95% [{fmt_rate(g.ci_low)}, {fmt_rate(g.ci_high)}]; legacy {fmt_rate(g.legacy_rate)}"
                     + (f"; {g.runs - g.finished} run(s) did not finish" if g.finished < g.runs else ""),
        })
    height = top + len(rows) * row_h + 30
    ticks = [{"x": left + plot_w * t, "label": f"{t:g}"} for t in (0, 0.25, 0.5, 0.75, 1.0)]
    return {"width": left + plot_w + right, "height": height, "left": left, "plot_w": plot_w, "top": top,
            "bottom": top + len(rows) * row_h, "bars": items, "ticks": ticks}


def _stroke(g: stats.GroupStats) -> tuple[float, str]:
    width, dash = STRATEGY_STROKES.get(g.strategy or "", DEFAULT_STROKE)
    return width, BASELINE_DASH if g.baseline else dash


def curves_chart(rows: list[dict]) -> dict[str, Any]:
    """Cumulative success by attempt over the finished runs: one polyline per group, i.e. per
    (case, model, strategy). Colours follow the row (as in the scatter charts); the line style
    follows the strategy, and wider lines are drawn first, so curves that coincide (the same answers
    under two strategies) stay visible as nested stripes."""
    drawn = [(i, r) for i, r in enumerate(rows) if r["g"].success_by_attempt]
    left, top, plot_w, plot_h = 60, 20, 520, 260
    top_attempt = max((len(r["g"].success_by_attempt) for _, r in drawn), default=1)
    xs = lambda a: left + (plot_w * (a - 1) / (top_attempt - 1) if top_attempt > 1 else plot_w / 2)  # noqa: E731
    ys = lambda v: top + plot_h * (1 - v)  # noqa: E731
    lines = []
    for i, row in drawn:
        curve = row["g"].success_by_attempt
        width, dash = _stroke(row["g"])
        pts = [(xs(a), ys(v), a, v) for a, v in enumerate(curve, start=1)]
        lines.append({
            "label": row["label"], "tags": row["tags"], "colour": PALETTE[i % len(PALETTE)],
            "dashed": bool(dash), "dash": dash, "width": width, "dot_r": width / 2 + 1.5,
            "points": " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in pts),
            "dots": [{"x": x, "y": y, "title": f"{row['label']}: {v:.3f} succeeded within {a} attempt(s)"}
                     for x, y, a, v in pts],
        })
    used = {row["g"].strategy for _, row in drawn}
    step = max(1, math.ceil(top_attempt / 15))
    return {
        "width": left + plot_w + 30, "height": top + plot_h + 50, "left": left, "top": top,
        "plot_w": plot_w, "plot_h": plot_h, "legend": lines,
        "lines": sorted(lines, key=lambda line: -line["width"]),  # stable: row order within a width
        "styles": [f"{name}: {STROKE_WORDS[name]}" for name in STRATEGY_STROKES if name in used]
                  + (["paper baseline: dash-dotted"] if any(r["g"].baseline for _, r in drawn) else []),
        "xticks": [{"x": xs(a), "label": str(a)} for a in range(1, top_attempt + 1, step)],
        "yticks": [{"y": ys(v), "label": f"{v:g}"} for v in (0, 0.25, 0.5, 0.75, 1.0)],
        "omitted": [],
    }


def scatter_chart(rows: list[dict], metric: str, axis_label: str) -> dict[str, Any]:
    """Success rate (y) against the mean per-run ``metric`` (x: ``cost_usd`` or ``tokens``)."""
    left, top, plot_w, plot_h = 70, 20, 500, 240
    known = [(i, r, finite(getattr(r["g"], metric)["all"]["mean"])) for i, r in enumerate(rows)]
    omitted = [r["label"] for _, r, v in known if v is None]
    known = [(i, r, v) for i, r, v in known if v is not None]
    ticks = _nice_ticks(max((v for _, _, v in known), default=0.0))
    x_top = ticks[-1] or 1.0
    xs = lambda v: left + plot_w * v / x_top  # noqa: E731
    ys = lambda v: top + plot_h * (1 - v)  # noqa: E731
    points = []
    for n, (i, row, v) in enumerate(known, start=1):
        g = row["g"]
        points.append({
            "x": xs(v), "y": ys(g.rate), "n": n, "colour": PALETTE[i % len(PALETTE)], "baseline": g.baseline,
            "label": row["label"], "tags": row["tags"],
            "value": fmt_usd(v) if metric == "cost_usd" else fmt_digits(v, 0),
            "title": f"{row['label']}: mean {axis_label} {v:.4g}, success {g.rate:.3f}",
        })
    return {
        "width": left + plot_w + 30, "height": top + plot_h + 50, "left": left, "top": top,
        "plot_w": plot_w, "plot_h": plot_h, "points": points, "axis_label": axis_label,
        "xticks": [{"x": xs(t), "label": _tick_label(t)} for t in ticks],
        "yticks": [{"y": ys(v), "label": f"{v:g}"} for v in (0, 0.25, 0.5, 0.75, 1.0)],
        "omitted": omitted,
    }


def silent_chart(rows: list[dict]) -> dict[str, Any]:
    left, plot_w, right, top, row_h = 330, 360, 190, 30, 30
    items = []
    for i, row in enumerate(rows):
        g = row["g"]
        rate = finite(g.silent_failure_rate)
        items.append({
            "label": row["label"], "tags": row["tags"], "y": top + i * row_h + row_h / 2,
            "w": plot_w * (rate or 0.0), "measured": rate is not None, "baseline": g.baseline,
            "text": (f"{rate:.3f} ({g.silent_failures}/{g.finished})" if rate is not None
                     else "not measurable (no strict oracle or no finished run)"),
        })
    ticks = [{"x": left + plot_w * t, "label": f"{t:g}"} for t in (0, 0.25, 0.5, 0.75, 1.0)]
    return {"width": left + plot_w + right, "height": top + len(rows) * row_h + 30, "left": left,
            "plot_w": plot_w, "top": top, "bottom": top + len(rows) * row_h, "bars": items, "ticks": ticks}


def taxonomy_chart(rows: list[dict]) -> dict[str, Any]:
    """Stacked bars: final category of failed runs, as a fraction of the group's finished runs."""
    left, plot_w, right, top, row_h = 330, 360, 120, 30, 30
    items, used = [], []
    for i, row in enumerate(rows):
        g = row["g"]
        x, segs = float(left), []
        for cat, count in g.final_categories.items():
            if not count:
                continue
            w = plot_w * count / g.finished  # count > 0: some run finished
            segs.append({"x": x, "w": w, "colour": CATEGORY_COLOURS.get(cat, "#333"),
                         "title": f"{row['label']}: {cat} {count}/{g.finished}"})
            x += w
            if cat not in used:
                used.append(cat)
        items.append({"label": row["label"], "tags": row["tags"], "y": top + i * row_h + row_h / 2,
                      "segs": segs, "text": f"{row['final_total']}/{g.finished} failed"})
    legend = [{"cat": c, "colour": CATEGORY_COLOURS.get(c, "#333")} for c in stats.TAXONOMY if c in used]
    ticks = [{"x": left + plot_w * t, "label": f"{t:g}"} for t in (0, 0.25, 0.5, 0.75, 1.0)]
    return {"width": left + plot_w + right, "height": top + len(rows) * row_h + 30, "left": left,
            "plot_w": plot_w, "top": top, "bottom": top + len(rows) * row_h, "bars": items, "ticks": ticks,
            "legend": legend}


# ---------------------------------------------------------------------------------------------
# drill-down


def _run_view(rec: RunRecord, run_row: dict[str, Any]) -> dict[str, Any]:
    return {
        "rec": rec,
        "anchor": run_anchor(rec.nodeid),
        "tokens": run_row["tokens"], "cost": run_row["cost_usd"], "latency": run_row["latency_s"],
        "attempt_count": run_row["attempts"], "silent": bool(run_row["silent_failure"]),
        "attempts": [a for a in rec.attempts],
    }


# ---------------------------------------------------------------------------------------------
# page


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pytest_autopilot.results", "templates"),
        autoescape=True,  # everything, whatever the template's extension
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=fmt_digits, rate=fmt_rate, usd=fmt_usd, clip=clip)
    env.globals.update(SCRIPTED_LABEL=SCRIPTED_LABEL, BASELINE_LABEL=BASELINE_LABEL, HUMAN_LABEL=HUMAN_LABEL,
                       STEP_TOTAL=stats.RUN_TOTAL_STEP)
    return env


def build_context(
    records: Iterable[RunRecord],
    provenance: dict[str, Any] | None = None,
    complete: bool = True,
    baseline: tuple[list[RunRecord], dict, bool] | None = None,
    incomplete_reason: str | None = None,
    tables: Any = None,
) -> dict[str, Any]:
    """Everything the template shows (exposed for tests and other front ends); ``tables``: the
    report's own groups, tiers and study rows, computed once for its files and this page."""
    records = list(records)
    provenance = provenance or {}
    this_is_baseline = is_baseline(provenance)
    groups = tables.groups if tables else stats.group_stats(records, baseline=this_is_baseline)
    rows = [_row(g) for g in groups]
    run_stages = sorted({r.stage for r in records}, key=report_order)

    base = _baseline_view(baseline, records, rows, run_stages, provenance) if baseline is not None else None
    chart_rows = [*rows, *base["chart_rows"]] if base is not None else rows
    drill = [] if this_is_baseline else _drill(records, rows)
    prov_items = [(k, provenance[k]) for k in ("run_id", "started_at", "finished_at", "git_commit", "record_mode",
                                                 "python", "platform", "workers", "imported_at") if k in provenance]
    return {
        "run_id": provenance.get("run_id", "run"),
        "complete": complete,
        "incomplete_reason": incomplete_reason,
        "no_verdict_rows": [r for r in rows if r["no_verdict"]],  # set-up trouble, shown first
        "is_baseline": this_is_baseline,
        "baseline_info": (provenance.get("baseline") or {}) if this_is_baseline else {},
        "provenance_items": prov_items,
        "versions": provenance.get("versions") or {},
        "scripted_any": any(r.scripted for r in records),
        "human_any": any(r.human for r in records),
        "metric_names": sorted({m for g in groups for m in g.metrics}),
        "check_names": sorted({c for g in groups for c in g.check_failures}),
        "n_runs": len(records),
        "rows": rows,
        "pooled_rows": ([_row(g, f"{g.stage} × all models (pooled)")
                         for g in stats.group_stats(records, ("stage",), baseline=True)]
                        if this_is_baseline else []),
        "baseline": base,
        "chart": _charts(chart_rows),
        "curve_missing": [r["label"] for r in chart_rows if r["g"].success_by_attempt is None],
        "taxonomy": [c for c in stats.TAXONOMY  # the categories that occur
                     if any(r["g"].final_categories.get(c) or r["g"].attempt_categories.get(c) for r in chart_rows)],
        "drill": drill,
        "study": tables.study if tables else study_rows(records),  # re-scored archives with the study's own verdicts
        "tier_rows": [_row(g, tier_label(g)) for g in (tables.tier_groups if tables else tier_groups(records))],
    }


def _baseline_view(baseline: tuple[list[RunRecord], dict, bool], records: list[RunRecord], rows: list[dict],
                   run_stages: list[str], provenance: dict[str, Any]) -> dict[str, Any]:
    """The loaded baseline beside this run: its rows stage by stage (pooled first where a stage has
    several models), the comparison of legacy success rates, and its rows for the charts."""
    b_records, b_prov, _ = baseline
    b_groups = stats.group_stats(b_records, baseline=True)
    pooled = {g.stage: g for g in stats.group_stats(b_records, ("stage",), baseline=True)}
    b_rows = [_row(g) for g in b_groups]
    sections = []
    for stage in sorted({*run_stages, *(g.stage for g in b_groups)}, key=report_order):
        stage_b = [r for r in b_rows if r["stage"] == stage]
        if len(stage_b) > 1 and stage in pooled:
            stage_b = [_row(pooled[stage], f"{stage} × all paper models (pooled)"), *stage_b]
        sections.append({"stage": stage, "run_rows": [r for r in rows if r["stage"] == stage],
                         "baseline_rows": stage_b, "in_run": stage in run_stages})
    # by stage (the paper's cases are its stages), and strategy by strategy when this run sweeps several
    comparison = compare(b_records, records, metric="legacy", a_label="paper baseline",
                         b_label=str(provenance.get("run_id", "this run")), a_baseline=True)
    return {
        "provenance": b_prov,
        "criterion": (b_prov.get("baseline") or {}).get("success_criterion", ""),
        "representation": (b_prov.get("baseline") or {}).get("representation", ""),
        "sections": sections, "comparison": comparison, "chart_rows": [r for r in b_rows if r["stage"] in run_stages],
        "runs": len(b_records),
    }


def _drill(records: list[RunRecord], rows: list[dict]) -> list[dict]:
    """Each group's row with its runs, for the drill-down."""
    runs = stats.runs_frame(records).to_dict(orient="records")
    by_group: dict[tuple, list] = {}
    for rec, run_row in zip(records, runs):
        by_group.setdefault((rec.case, rec.model_id, rec.strategy), []).append(_run_view(rec, run_row))
    return [{"row": row, "runs": by_group.get((row["g"].case, row["g"].model_id, row["g"].strategy), [])}
            for row in rows]


def _charts(chart_rows: list[dict]) -> dict[str, Any]:
    return {
        "rates": rates_chart(chart_rows),
        "curves": curves_chart(chart_rows),
        "cost": scatter_chart(chart_rows, "cost_usd", "cost per run (USD)"),
        "tokens": scatter_chart(chart_rows, "tokens", "tokens per run"),
        "silent": silent_chart(chart_rows),
        "taxonomy": taxonomy_chart(chart_rows),
    }


def render_html(
    records: Iterable[RunRecord],
    provenance: dict[str, Any] | None = None,
    complete: bool = True,
    baseline: tuple[list[RunRecord], dict, bool] | None = None,
    incomplete_reason: str | None = None,
    tables: Any = None,  # results.report.ReportTables, when the report has computed them
) -> str:
    """The page for ``records`` (one run), with ``baseline`` (loaded results) side by side."""
    context = build_context(records, provenance, complete, baseline, incomplete_reason, tables)
    return _environment().get_template("report.html.j2").render(**context)
