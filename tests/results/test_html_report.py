"""The self-contained HTML report: content, escaping, labels, baseline side by side, headless Chromium."""

from __future__ import annotations

import html.parser
import shutil
import subprocess

import pytest

from pytest_autopilot.core.records import Attempt, Category, Check, ExecResult, RunRecord, RunStatus, Verdict
from pytest_autopilot.results import html as html_report
from pytest_autopilot.results import report, stats

HOSTILE = '</pre><script>alert("pwned")</script><img src=x onerror=alert(1)>'


def _attempt(number: int, ok: bool, *, code: str = "print(1)", stdout: str = "", category: str | None = None,
             cost: float | None = 0.01) -> Attempt:
    category = None if ok else (category or Category.SEMANTIC_MISMATCH)
    return Attempt(
        step="code", item=None, number=number, prompt_hash=f"h{number}", prompt=f"write it <b>{number}</b>",
        response=f"```python\n{code}\n```", code=code, code_lang="python",
        execution=ExecResult(returncode=0, stdout=stdout, stderr="Traceback <stderr>", duration_s=0.2),
        strict=Verdict.from_checks("dp_strict", [Check("output_exists", ok, "" if ok else f"missing {HOSTILE}")],
                                   category),
        legacy=Verdict.from_checks("legacy", [Check("exit0", True)]),
        category=category, error=None if ok else f"oracle said {HOSTILE}",
        total_tokens=100, prompt_tokens=60, completion_tokens=40, cost_usd=cost, latency_s=1.5,
    )


def _run(case: str, model: str, rep: int, attempts: list[Attempt], ok: bool, *, scripted: bool = False,
         stage: str = "DP") -> RunRecord:
    return RunRecord(
        nodeid=f"cases/dp/{case}.yaml::{case}[{model}-r{rep:02d}]", case=case, stage=stage, model_id=model,
        model=f"provider/{model}", params={"temperature": 0}, repetition=rep,
        status=RunStatus.SUCCESS if ok else RunStatus.FAILURE, strict_success=ok, legacy_success=True,
        attempts=attempts, scripted=scripted,
    )


@pytest.fixture
def records() -> list[RunRecord]:
    return [
        _run("clean", "gpt-x", 1, [_attempt(1, False, code=HOSTILE), _attempt(2, True)], True),
        _run("clean", "gpt-x", 2, [_attempt(1, False, stdout=HOSTILE, category=Category.RUNTIME_ERROR)], False),
        _run("clean", "scripted-standin", 1, [_attempt(1, True, cost=0.0)], True, scripted=True),
        _run("clean", "scripted-standin", 2, [_attempt(1, False, cost=0.0), _attempt(2, False, cost=0.0)], False,
             scripted=True),
        _run(HOSTILE, "evil<model>", 1, [_attempt(1, True, cost=None)], True),
    ]


def _baseline() -> tuple[list[RunRecord], dict, bool]:
    runs = []
    for rep in range(1, 11):
        ok = rep <= 9
        total = Attempt(step=stats.RUN_TOTAL_STEP, item=None, number=0, prompt_hash="", prompt="",
                        total_tokens=1000, cost_usd=0.08, latency_s=40.0)
        runs.append(RunRecord(
            nodeid=f"paper-records/DP_MCU_data_by_run.csv::DP[paper-gpt-4o-r{rep:02d}]", case="DP", stage="DP",
            model_id="paper-gpt-4o", model="openai/gpt-4o", params={}, repetition=rep,
            status=RunStatus.SUCCESS if ok else RunStatus.FAILURE, strict_success=ok, legacy_success=ok,
            attempts=[total]))
    prov = {"run_id": "paper-baseline", "baseline": {"source": "paper", "success_criterion": "the paper's status",
                                                     "representation": "run totals"}}
    return runs, prov, True


PROV = {"run_id": "run-1", "started_at": "2025-01-01T00:00:00+00:00", "versions": {"pytest": "8"}}


class _Dom(html.parser.HTMLParser):
    """Counts elements and collects ids and the text of the page."""

    def __init__(self):
        super().__init__()
        self.tags: dict[str, int] = {}
        self.ids: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        for name, value in attrs:
            if name == "id":
                self.ids.add(value)

    def handle_data(self, data):
        self.text.append(data)


def _parse(page: str) -> _Dom:
    dom = _Dom()
    dom.feed(page)
    return dom


CHARTS = {"chart-rates", "chart-curves", "chart-cost", "chart-tokens", "chart-silent", "chart-taxonomy"}
TABLES = {"table-summary", "table-passk", "table-taxonomy", "table-distributions"}


def test_page_sections_and_numbers(records):
    page = html_report.render_html(records, PROV, complete=True)
    dom = _parse(page)
    assert CHARTS <= dom.ids and TABLES <= dom.ids
    assert dom.tags["svg"] == len(CHARTS) and dom.tags.get("script", 0) == 0
    assert "<!DOCTYPE html>" in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    text = "".join(dom.text)
    # gpt-x: 1 strict success of 2, Wilson interval shown
    lo, hi = stats.wilson_interval(1, 2)
    assert f"0.500 [{lo:.3f}–{hi:.3f}]" in text
    assert "k=1: 0.500 · k=2: 1.000" in text  # pass@k of n=2, c=1
    assert "k=1: 0.500 · k=2: 0.000" in text  # pass^k
    taxonomy = page.split('id="table-taxonomy"')[1].split("</table>")[0]
    assert "semantic_mismatch" in taxonomy and "runtime_error" in taxonomy
    assert "cassette_miss" not in taxonomy  # only the categories that occur
    assert "INCOMPLETE" not in text
    assert "INCOMPLETE" in " ".join(_parse(html_report.render_html(records, PROV, complete=False)).text)
    # cost unknown for the hostile group: not plotted on the cost scatter, and said so
    assert "not plotted (cost per run (USD) unknown)" in text


def test_everything_is_escaped(records):
    page = html_report.render_html(records, PROV)
    assert "<script" not in page and "<img" not in page and "onerror=alert(1)>" not in page
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in page  # code, stdout, errors, case name
    assert "evil&lt;model&gt;" in page and "write it &lt;b&gt;1&lt;/b&gt;" in page
    dom = _parse(page)
    assert dom.tags.get("script", 0) == 0 and dom.tags.get("img", 0) == 0
    assert any(HOSTILE in t for t in dom.text)  # shown as text, verbatim


def test_scripted_rows_labelled_everywhere(records):
    page = html_report.render_html(records, PROV)
    label = html_report.SCRIPTED_LABEL
    assert label == "scripted stand-in (not an LLM)"
    summary = page.split('id="table-summary"')[1].split("</table>")[0]
    row = next(r for r in summary.split("<tr") if "scripted-standin" in r)
    assert label in row and label not in next(r for r in summary.split("<tr") if "gpt-x" in r)
    for chart in ("chart-rates", "chart-curves", "chart-silent", "chart-taxonomy"):
        section = page.split(f'id="{chart}"')[1].split("</svg>")[0]
        assert label in section, chart
    for table in ("table-passk", "table-taxonomy", "table-distributions"):
        assert label in page.split(f'id="{table}"')[1].split("</table>")[0], table
    drill = page.split('id="runs"')[1]
    assert drill.count(label) >= 3  # the group and its two runs
    assert 'id="scripted-warning"' in page


def test_drill_down_holds_every_attempt(records):
    page = html_report.render_html(records, PROV)
    drill = page.split('id="runs"')[1]
    assert drill.count('class="attempt"') == sum(len(r.attempts) for r in records) == 7
    assert drill.count('class="run"') == 5
    assert "output_exists" in drill and "Traceback &lt;stderr&gt;" in drill and "dp_strict: failed" in drill


def test_baseline_side_by_side(records):
    page = html_report.render_html(records, PROV, baseline=_baseline())
    dom = _parse(page)
    assert {"baseline", "table-side-by-side", "table-compare"} <= dom.ids
    side = page.split('id="table-side-by-side"')[1].split("</table>")[0]
    stage = side.split("stage DP")[1]
    # this run's rows, then the paper's, in the same stage block
    assert stage.index("clean × gpt-x") < stage.index("DP × paper-gpt-4o")
    assert html_report.BASELINE_LABEL in stage and "not measurable" in stage
    rates = page.split('id="chart-rates"')[1].split("</svg>")[0]
    assert "DP × paper-gpt-4o" in rates and html_report.BASELINE_LABEL in rates
    compare = page.split('id="table-compare"')[1].split("</table>")[0]
    assert "9/10" in compare and "Fisher" in compare
    # the paper's runs get no drill-down
    assert "paper-gpt-4o-r01" not in page


def test_empty_run_renders():
    page = html_report.render_html([], {"run_id": "empty"}, complete=False)
    assert "INCOMPLETE" in page and page.count("<svg") == len(CHARTS)


def test_write_report_and_baseline_only_page(tmp_path, records):
    paths = report.write_report(tmp_path / "run", records, PROV, html=True, baseline=_baseline())
    assert paths["report.html"].read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    runs, prov, _ = _baseline()
    page = html_report.render_html(runs, prov)
    assert "imported <b>paper baseline</b>" in page and "No per-run drill-down" in page
    pooled = page.split('id="table-pooled"')[1].split("</table>")[0]
    assert "DP × all models (pooled)" in pooled and "0.900" in pooled


# --------------------------------------------------------------------------------------------
# headless Chromium

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install -y chromium)")
def test_renders_in_headless_chromium(tmp_path, records):
    out = tmp_path / "run"
    paths = report.write_report(out, records, PROV, html=True, baseline=_baseline())
    url = paths["report.html"].resolve().as_uri()
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
              f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    rendered = _parse(dom.stdout)
    assert rendered.tags.get("svg", 0) == len(CHARTS) and CHARTS <= rendered.ids
    assert TABLES | {"table-side-by-side", "table-compare"} <= rendered.ids
    assert rendered.tags.get("polyline", 0) >= 2 and rendered.tags.get("circle", 0) > 0
    assert rendered.tags.get("script", 0) == 0 and rendered.tags.get("img", 0) == 0  # hostile input stayed text
    assert any(HOSTILE in t for t in rendered.text)

    png = tmp_path / "shot.png"
    shot = subprocess.run([*common, "--window-size=1280,2000", f"--screenshot={png}", url],
                          capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0, shot.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
