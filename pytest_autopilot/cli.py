"""``pytest-autopilot``: work with report folders outside a pytest session.

    pytest-autopilot report RUN [--html] [--baseline BASELINE]
    pytest-autopilot compare RUN_A RUN_B [--alpha 0.05] [--fail-on-regression] [--metric strict|legacy]
                             [--by case,model_id,strategy] [--a-model GLOB] [--b-model GLOB]
                             [--a-strategy GLOB] [--b-strategy GLOB] [--json] [--html FILE]
    pytest-autopilot show RUN [--case CASE] [--run NODEID] [--full]
    pytest-autopilot baseline-import SRC_DIR OUT_DIR [--html]
    pytest-autopilot cassettes [--manifest | --stale] [--autopilot-cassettes-dir DIR]
    pytest-autopilot envs list|build|remove [NAME ...] [--all]
    pytest-autopilot oracles [NAME]  |  pytest-autopilot schema [FILE]

RUN is a report folder, its ``results.json``, or a run id under the reports folder
(``--autopilot-reports-dir``, the same option as the pytest flag; else the ini key
``autopilot_reports_dir`` of the config file pytest itself would use here (pytest.toml,
pytest.ini, pyproject.toml, tox.ini, setup.cfg), relative to pytest's rootdir; else ``reports``
under the rootdir).

Exit status: 0 done; 1 ``compare``'s gate failed (``--fail-on-regression``: a significant regression,
per group or pooled; ``--max-drop``: a group fell further), or ``cassettes`` found a cassette that is
unreadable or does not match its manifest (with ``--stale``: whose first request the case no longer
renders); 2 usage error, unreadable input, or ``compare`` found no group present in both runs;
6 ``compare``'s gate met runs without a verdict or an incomplete report ("not comparable", see results.gate).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from pytest_autopilot import settings
from pytest_autopilot.cases import scaffold
from pytest_autopilot.oracles import authoring
from pytest_autopilot.core.util import fmt_num
from pytest_autopilot.results.merge import MergeError

SHARED = ("reports_dir",)  # options shared with the pytest flags
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _safe(text: Any) -> str:
    """Generated code and outputs may hold terminal escapes: show control characters as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", "" if text is None else str(text))


def cmd_merge(args) -> int:
    from pytest_autopilot.results.merge import merge_results

    written = merge_results([Path(d) for d in args.run_dirs], Path(args.out_dir))
    print(f"merged {len(args.run_dirs)} result folders into {args.out_dir}/ ({', '.join(sorted(written))})")
    return 0


def reports_dir(args: argparse.Namespace, cwd: Path | None = None) -> Path:
    """``--autopilot-reports-dir`` (relative to ``cwd``), else the ini key relative to pytest's
    rootdir (as the plugin resolves it), else ``reports`` under the rootdir."""
    return settings.folder_setting(args, "reports_dir", cwd)


# ---------------------------------------------------------------------------------------------
# commands


def _load(run: str, args) -> tuple[Path, tuple]:
    from pytest_autopilot.results.report import load_results, resolve_run_dir

    run_dir = resolve_run_dir(run, reports_dir(args))
    return run_dir, load_results(run_dir / "results.json")


def cmd_report(args) -> int:
    from pytest_autopilot.results.provenance import is_baseline
    from pytest_autopilot.results.report import regenerate, report_tables

    run_dir, (records, prov, complete) = _load(args.run, args)
    baseline = _load(args.baseline, args)[1] if args.baseline else None
    if baseline is not None and not args.html:
        print("note: --baseline only affects the HTML report; add --html", file=sys.stderr)
    tables = report_tables(records, baseline=is_baseline(prov))
    written = regenerate(run_dir, html=args.html, baseline=baseline, tables=tables)
    for line in tables.terminal_lines():
        print(line)
    if not complete:
        print("INCOMPLETE: the session was interrupted")
    for name in sorted(written):
        print(f"wrote {written[name]}")
    return 0


def cmd_compare(args) -> int:
    from pytest_autopilot.results.compare import compare
    from pytest_autopilot.results.gate import compare_status
    from pytest_autopilot.results.provenance import is_baseline

    dir_a, (rec_a, prov_a, complete_a) = _load(args.run_a, args)
    dir_b, (rec_b, prov_b, complete_b) = _load(args.run_b, args)
    by = tuple(p.strip() for p in args.by.split(",") if p.strip()) if args.by else None
    allowed = {"case", "stage", "model_id", "model", "strategy"}
    if by is not None and not set(by) <= allowed:
        print(f"--by: choose from {', '.join(sorted(allowed))}", file=sys.stderr)
        return 2
    result = compare(
        rec_a, rec_b, alpha=args.alpha, by=by, metric=args.metric, a_model=args.a_model, b_model=args.b_model,
        a_strategy=args.a_strategy, b_strategy=args.b_strategy,
        a_label=str(prov_a.get("run_id") or dir_a), b_label=str(prov_b.get("run_id") or dir_b),
        a_baseline=is_baseline(prov_a), b_baseline=is_baseline(prov_b),
        a_incomplete=None if complete_a else "complete: false", b_incomplete=None if complete_b else "complete: false",
    )
    if args.html:
        from pytest_autopilot.results.compare_html import render_comparison

        Path(args.html).write_text(render_comparison(result, prov_a, prov_b), encoding="utf-8")
        print(f"wrote {args.html}", file=sys.stderr)
    if args.json:
        from pytest_autopilot.results.report import jsonable

        print(json.dumps(jsonable(result.to_dict()), indent=2, allow_nan=False))
    else:
        print(result.text())
    if not result.groups:  # a regression gate that compared nothing is misconfigured, not green
        print("pytest-autopilot compare: no group present in both runs "
              "(see --by, --a-model, --b-model, --a-strategy, --b-strategy)",
              file=sys.stderr)
        return 2
    status, lines = compare_status(result, args.fail_on_regression, args.max_drop)
    for line in lines:
        print(line, file=sys.stderr if status else sys.stdout)
    return status


def _show_run(rec, full: bool) -> None:
    print(f"{rec.nodeid}: {rec.status} (strict {rec.strict_success}, legacy {rec.legacy_success}), "
          f"model {rec.model_id} ({rec.model}), strategy {rec.strategy}"
          f"{' — scripted stand-in (not an LLM)' if rec.scripted else ''}"
          f"{' — human baseline (a person, not an LLM)' if rec.human else ''}")
    if rec.error:
        print(f"  error: {_safe(rec.error)}")
    for a in rec.attempts:
        where = a.step + (f"/{a.item}" if a.item else "")
        verdict = a.category or ("ok" if a.strict_passed else "-")
        money = "unknown" if a.cost_usd is None else f"${a.cost_usd:.4f}"
        print(f"  #{a.number} {where}: {verdict}; tokens {a.total_tokens if a.total_tokens is not None else '?'}, "
              f"cost {money}, latency {'?' if a.latency_s is None else f'{a.latency_s:.2f}s'}"
              + (", prompt cut to fit the context" if a.truncated else "")
              + (", answer cut at the token limit" if a.answer_truncated else "")
              + (", repeated an earlier answer" if a.repeated else "")
              + (f", {a.stopped}" if a.stopped else ""))
        if a.execution is not None:
            ex = a.execution
            print(f"     exit {ex.returncode}{', timed out' if ex.timed_out else ''} in {ex.duration_s:.2f}s")
        for v in (a.strict, a.legacy):
            if v is not None and v.failed_checks:
                for c in v.failed_checks:
                    print(f"     {v.oracle}: {_safe(c.name)} failed: {_safe(c.detail)[:300]}")
        if a.error:
            print(f"     error: {_safe(a.error)[:500] if not full else _safe(a.error)}")
        if full:
            for title, text in (("prompt", a.prompt), ("code", a.code),
                                ("stdout", a.execution.stdout if a.execution else None),
                                ("stderr", a.execution.stderr if a.execution else None)):
                if text:
                    print(f"     --- {title} ---")
                    print("\n".join("     " + line for line in _safe(text).splitlines()))


def cmd_show(args) -> int:
    from pytest_autopilot.results.provenance import is_baseline
    from pytest_autopilot.results.report import terminal_lines
    from pytest_autopilot.results.metrics import group_lines
    from pytest_autopilot.results.stats import group_stats, summary_frame

    run_dir, (records, prov, complete) = _load(args.run, args)
    if args.case:
        records = [r for r in records if r.case == args.case]
        if not records:
            print(f"no run of case {args.case!r} in {run_dir}", file=sys.stderr)
            return 2
    if args.run_id:
        exact = [r for r in records if r.nodeid == args.run_id]
        matches = exact or [r for r in records if args.run_id in r.nodeid]
        if len(matches) != 1:
            names = "\n  ".join(r.nodeid for r in matches[:20])
            print(f"{len(matches)} runs match {args.run_id!r}" + (f":\n  {names}" if matches else ""),
                  file=sys.stderr)
            return 2
        _show_run(matches[0], args.full)
        return 0
    print(f"{run_dir}{'' if complete else ' (INCOMPLETE)'}")
    groups = group_stats(records, baseline=is_baseline(prov))
    for line in terminal_lines(summary_frame(groups)):
        print(line)
    for g in groups:
        ks = [k for k in (1, 2, 3, 5, 10) if k <= g.runs]
        curve = ("-" if g.success_by_attempt is None else
                 " ".join(f"{v:.2f}" for v in g.success_by_attempt))
        cats = ", ".join(f"{c} {n}" for c, n in g.final_categories.items() if n) or "-"
        silent = fmt_num(g.silent_failure_rate, ".3f", missing="not measurable")
        repeats = fmt_num(g.repeated_answer_rate, ".3f", missing="n/a")
        unfinished = (f"; no verdict (not in the rates): {g.crashed} crashed, {g.incomplete} incomplete, "
                      f"{g.errors} error ({', '.join(f'{c} {n}' for c, n in g.error_categories.items()) or '-'})"
                      if g.finished < g.runs else "")
        print(f"{g.label}{' [scripted stand-in (not an LLM)]' if g.scripted else ''}"
              f"{' [human baseline (a person, not an LLM)]' if g.human else ''}"
              f"{' [paper baseline]' if g.baseline else ''}:")
        print(f"  runs {g.runs}, finished {g.finished}{unfinished}")
        print("  pass@k  " + "  ".join(f"k={k} {g.pass_at_k[k]:.3f}" for k in ks))
        print("  pass^k  " + "  ".join(f"k={k} {g.pass_hat_k[k]:.3f}" for k in ks))
        print(f"  success by attempt: {curve}")
        print(f"  silent-failure rate: {silent}; failed runs by final category: {cats}")
        print(f"  repeated answers: {g.repeated_answers} of {g.retries} retries (rate {repeats})")
        print("\n".join(group_lines(g)))
    return 0


def cmd_baseline_import(args) -> int:
    from pytest_autopilot.results.baseline import import_to

    written = import_to(Path(args.src_dir), Path(args.out_dir), html=args.html)
    for name in sorted(written):
        print(f"wrote {written[name]}")
    return 0


def cmd_envs(args) -> int:
    """The software environments boards and cases declare: list, build (once, cached), remove."""
    from pytest_autopilot.executors.environments import command

    return command(args.action, args.names, settings.folder_setting(args, "hardware_dir"),
                   settings.folder_setting(args, "cases_dir"), args.all, out=print,
                   err=lambda line: print(line, file=sys.stderr))


def cmd_models(args) -> int:
    """The named local models: installed or not, size, where; --install assembles and verifies one."""
    from pytest_autopilot.llm import local_models

    if args.install:
        try:
            path = local_models.install(args.install)
        except local_models.LocalModelError as exc:
            print(f"pytest-autopilot models: {exc}", file=sys.stderr)
            return 2
        print(f"installed {args.install}: {path}")
        return 0
    for entry in local_models.listing():
        state = "installed" if entry["installed"] else "not installed"
        print(f"{entry['name']:<22} {entry['size'] / 1e6:7.0f} MB  {state:<13}  {entry['description']}  ({entry['path']})")
    return 0


def cmd_cassettes(args) -> int:
    """Check every cassette (readable, matching its folder's MANIFEST.sha256), write the manifests,
    or (--stale) name the cassettes whose case no longer renders their first prompt."""
    from pytest_autopilot.core.util import relative_to
    from pytest_autopilot.llm.cassette_manifest import write_manifests
    from pytest_autopilot.llm.cassettes import survey

    root = settings.folder_setting(args, "cassettes_dir")
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no cassettes folder (give --autopilot-cassettes-dir)")
    if args.stale:
        from pytest_autopilot.loop.stale import find_stale

        report = find_stale(settings.folder_setting(args, "cases_dir"), settings.folder_setting(args, "prompts_dir"), settings.folder_setting(args, "hardware_dir"),
                            root, shown=lambda path: str(relative_to(Path.cwd(), path)))
        print("\n".join(report.lines()))
        return 1 if report.stale or report.problems else 0
    if args.manifest:
        written = write_manifests(root)
        print(f"wrote {len(written)} manifest(s) under {relative_to(Path.cwd(), root)}/")
        return 0
    cassettes = sorted(root.rglob("*.yaml"))
    problems, unused, unknown = survey(cassettes, lambda path: relative_to(Path.cwd(), path))
    for line in problems + unused:
        print(line)
    print(f"{len(cassettes)} cassette(s) checked: {len(problems) or 'no'} problem(s), {len(unused) or 'no'} with "
          f"interactions their last replay never used"
          + (f" ({unknown} not replayed on this machine yet: replay with --record-mode=none to know)" if unknown else ""))
    return 1 if problems else 0


# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pytest-autopilot", description="Reports, comparisons and the paper baseline for pytest-autopilot runs.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        settings.add_argparse_options(p, SHARED)
        return p

    p = command("report", "regenerate the CSVs, summary.json, stats.json (and report.html) from results.json")
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument("--html", action="store_true", help="also write report.html")
    p.add_argument("--baseline", metavar="BASELINE_DIR", help="a baseline report folder to show side by side")
    p.set_defaults(func=cmd_report)

    p = command("compare", "compare two runs (or two models, or two repair strategies) case by case; "
                         "flag significant regressions")
    p.add_argument("run_a", metavar="RUN_A")
    p.add_argument("run_b", metavar="RUN_B")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    p.add_argument("--fail-on-regression", action="store_true",
                   help="exit 1 when B regresses significantly (a group, or the pooled test); "
                        "exit 6 when not comparable")
    p.add_argument("--max-drop", type=settings.rate_type, metavar="RATE",
                   help="exit 1 when a group's rate falls by more than RATE (0.1 or 10%%: ten points); "
                        "6 when not comparable")
    p.add_argument("--metric", choices=("strict", "legacy"), default="strict",
                   help="success by the strict oracle (default) or the legacy weak check")
    p.add_argument("--by", help="comma-separated grouping fields (case, stage, model_id, model, strategy); "
                                "default case,model_id (case with both --a-model/--b-model; stage against a "
                                "baseline), plus strategy when a side holds several repair strategies")
    p.add_argument("--a-model", help="only A's runs whose model id matches this glob")
    p.add_argument("--b-model", help="only B's runs whose model id matches this glob")
    p.add_argument("--a-strategy", help="only A's runs whose repair strategy matches this glob")
    p.add_argument("--b-strategy", help="only B's runs whose repair strategy matches this glob")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.add_argument("--html", metavar="FILE", help="also write a side-by-side page, changed rates highlighted")
    p.set_defaults(func=cmd_compare)

    p = command("show", "print a run's summary, or one run's attempts")
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument("--case", help="only this case")
    p.add_argument("--run", dest="run_id", metavar="NODEID", help="one run (node id, or a unique part of it)")
    p.add_argument("--full", action="store_true", help="with --run: also print prompts, code and outputs")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("merge", help="merge the results of shards (--autopilot-shard) into one report",
                       description="merge the results.json of several run folders (disjoint shards) into OUT_DIR")
    p.add_argument("out_dir", metavar="OUT_DIR")
    p.add_argument("run_dirs", metavar="RUN_DIR", nargs="+")
    p.set_defaults(func=cmd_merge)

    p = sub.add_parser("baseline-import", help="import the paper's per-run CSV records as a baseline run",
                       description="import the paper's per-run CSV records (SRC_DIR) as a report folder (OUT_DIR)")
    p.add_argument("src_dir", metavar="SRC_DIR")
    p.add_argument("out_dir", metavar="OUT_DIR")
    p.add_argument("--html", action="store_true", help="also write report.html")
    p.set_defaults(func=cmd_baseline_import)

    p = sub.add_parser("models", help="list the named local models (local/<name>), or install one",
                       description="list the named local models: installed or not, size and path; "
                                   "--install NAME assembles one into the user cache and verifies it")
    p.add_argument("--install", metavar="NAME", help="assemble and verify this named model")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("envs", help="list, build or remove the software environments boards and cases declare",
                       description="list the environments declared by boards (software:) and cases (environment:), "
                                   "build them (a venv each, once, in the user cache) or remove them")
    settings.add_argparse_options(p, ("hardware_dir", "cases_dir"))
    p.add_argument("action", choices=("list", "build", "remove"))
    p.add_argument("names", nargs="*", metavar="NAME", help="board or case names (build: default all; remove: or keys)")
    p.add_argument("--all", action="store_true", help="remove: every built environment")
    p.set_defaults(func=cmd_envs)

    p = sub.add_parser("cassettes", help="check every cassette against its folder's MANIFEST.sha256, or write them",
                       description="check that every cassette loads and matches the sha256 in its folder's "
                                   "MANIFEST.sha256; --manifest (re)writes the manifests from the cassettes as they are")
    settings.add_argparse_options(p, ("cassettes_dir", "cases_dir", "prompts_dir", "hardware_dir"))
    p.add_argument("--manifest", action="store_true", help="write the manifests (after a deliberate edit)")
    p.add_argument("--stale", action="store_true", help="name the cassettes whose first request differs from the "
                                                        "first prompt their case renders now (no model, no code)")
    p.set_defaults(func=cmd_cassettes)
    scaffold.add_parser(sub)
    authoring.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:  # e.g. piped into head: stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (FileNotFoundError, ValueError, MergeError) as exc:
        print(f"pytest-autopilot {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
