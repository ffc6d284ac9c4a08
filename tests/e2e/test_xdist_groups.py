"""The suite's own scheduling: scripts/test.sh runs ``--dist loadgroup`` so that the tests sharing a
heavy module fixture (the shipped self-test, the TF server, sshd, the Pi environment) build it once,
on one worker. With pytest 9.2.0 and pytest-xdist 3.8 the groups silently stopped working (xdist's
renamed node ids were ignored) and the shipped self-test ran twice, about 6 minutes each; so this
checks the installed pair really groups."""

from __future__ import annotations

GROUPED = """
import os, pytest

@pytest.fixture(scope="module")
def heavy():
    with open(os.environ["BUILDS_FILE"], "a") as fh:
        fh.write(f"{os.getpid()}\\n")
    return 1

@pytest.mark.xdist_group("heavy")
def test_first(heavy): pass

def test_between(): pass

@pytest.mark.xdist_group("heavy")
def test_second(heavy): pass

@pytest.mark.xdist_group("heavy")
def test_third(heavy): pass

@pytest.mark.parametrize("i", range(12))
def test_other(i): pass
"""


def test_loadgroup_builds_a_grouped_module_fixture_once(pytester, monkeypatch):
    builds = pytester.path / "builds.txt"
    monkeypatch.setenv("BUILDS_FILE", str(builds))
    pytester.makepyfile(test_grouped=GROUPED)
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=16)
    assert "test_grouped.py::test_second@heavy" in result.stdout.str()
    assert len(builds.read_text().split()) == 1, "the grouped tests ran on more than one worker"
