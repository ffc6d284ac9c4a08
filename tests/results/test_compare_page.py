"""``pytest-autopilot compare A B --html FILE``: two runs side by side per case, changed rates
highlighted, the prompt templates that differ named (issue 24)."""

from __future__ import annotations

from html.parser import HTMLParser

from pytest_autopilot.cli import main
from pytest_autopilot.core.records import RunRecord, RunStatus
from pytest_autopilot.results.report import write_report


def _runs(case: str, outcomes: list[bool]) -> list[RunRecord]:
    return [RunRecord(nodeid=f"cases/dp/{case}.yaml::{case}[m-r{rep:02d}]", case=case, stage="DP", model_id="m",
                      model="x/m", params={}, repetition=rep, status=RunStatus.SUCCESS if ok else RunStatus.FAILURE,
                      strict_success=ok, legacy_success=True, attempts=[])
            for rep, ok in enumerate(outcomes, start=1)]


def _provenance(run_id: str, prompt_sha: str) -> dict:
    return {"run_id": run_id, "case_hashes": {
        "cases/dp/split.yaml": {"cases/dp/split.yaml": "c1", "dp/split.j2": prompt_sha, "common/repair.j2": "r1"},
        "cases/dp/plan.yaml": {"cases/dp/plan.yaml": "c2", "dp/plan.j2": "p1", "common/repair.j2": "r1"}}}


class _Rows(HTMLParser):
    """The classes and cell texts of the page's rows in the table with the given id."""

    def __init__(self, table: str):
        super().__init__()
        self.table, self.inside, self.rows = table, False, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.inside = attrs.get("id") == self.table
        elif tag == "tr" and self.inside:
            self.rows.append((attrs.get("class") or "", []))
        elif tag == "td" and self.inside:
            self.rows[-1][1].append("")

    def handle_endtag(self, tag):
        if tag == "table":
            self.inside = False

    def handle_data(self, data):
        if self.inside and self.rows and self.rows[-1][1]:
            self.rows[-1][1][-1] += data


def test_the_page_puts_both_runs_side_by_side_and_highlights_changed_rates(tmp_path, capsys):
    before = _runs("split", [True] * 8) + _runs("plan", [True, False] * 4) + _runs("same", [True, True])
    after = _runs("split", [False] * 8) + _runs("plan", [True, True, False, True, True, False, True, False]) \
        + _runs("same", [True, True]) + _runs("<new>", [True])
    write_report(tmp_path / "before", before, _provenance("before", "s1"))
    write_report(tmp_path / "after", after, _provenance("after", "s2"))
    page = tmp_path / "compare.html"
    assert main(["compare", str(tmp_path / "before"), str(tmp_path / "after"), "--html", str(page)]) == 0
    assert f"wrote {page}" in capsys.readouterr().err
    html = page.read_text()

    groups = _Rows("groups")
    groups.feed(html)
    rows = {cells[0]: (cls, cells) for cls, cells in ((c, [x.strip() for x in cells]) for c, cells in groups.rows) if cells}
    assert rows["split × m"][0] == "down significant"  # 8/8 -> 0/8: a significant regression
    assert rows["split × m"][1][1:3] == ["8/8", "1.000 [0.676–1.000]"] and rows["split × m"][1][5] == "-100.0"
    assert rows["plan × m"][0] == "up" and rows["plan × m"][1][5] == "+12.5"  # 4/8 -> 5/8: changed, not significant
    assert rows["same × m"][0] == "same"
    assert "1 significant regression(s):</b> split × m" in html
    assert "only in B (not compared): &lt;new&gt; × m" in html  # names are escaped text, never markup

    files = _Rows("files")
    files.feed(html)
    assert [[x.strip() for x in cells] for _, cells in files.rows if cells] == [["dp/split.j2", "cases/dp/split.yaml", "changed"]]
