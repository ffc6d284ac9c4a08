"""``--autopilot-recorded-only`` keeps every recorded repetition and says what it deselected and why
(issue 24: it replayed only r01 unless --autopilot-runs was given, and dropped a new case silently)."""

from __future__ import annotations

import re
import shutil

from pytest_autopilot import cli


def test_recorded_only_replays_every_recorded_repetition_and_names_what_it_left_out(pytester, capsys):
    assert cli.main(["init", str(pytester.path)]) == 0
    capsys.readouterr()
    # the stand-in records r01-r03
    recorded = pytester.runpytest("cases", "-p", "no:xdist", "--autopilot-runs", "3")
    recorded.assert_outcomes(passed=3)
    cassettes = sorted(p.name for p in (pytester.path / "cassettes/dp/sensor_means").glob("*.yaml"))
    assert cassettes == [f"scripted-standin-r0{i}.yaml" for i in (1, 2, 3)]
    # a new case, not recorded yet
    shutil.copyfile(pytester.path / "cases/dp/sensor_means.yaml", pytester.path / "cases/dp/sensor_copy.yaml")

    replay = pytester.runpytest("cases", "-p", "no:xdist", "-v", "--autopilot-recorded-only", "--record-mode", "none")
    replay.assert_outcomes(passed=3, deselected=1)
    out = replay.stdout.str()
    assert all(f"sensor_means[scripted-standin-r0{i}] PASSED" in out for i in (1, 2, 3))
    (line,) = [line for line in out.splitlines() if line.startswith("--autopilot-recorded-only:")]
    assert line == ("--autopilot-recorded-only: kept 3 run(s) with a cassette (every recorded repetition of each "
                    "case); deselected 1 with no cassette: cases/dp/sensor_copy.yaml (1)")

    explicit = pytester.runpytest("cases", "-p", "no:xdist", "--autopilot-recorded-only", "--record-mode", "none",
                                  "--autopilot-runs", "2")
    explicit.assert_outcomes(passed=2, deselected=2)
    assert re.search(r"kept 2 run\(s\) with a cassette \(repetitions r01-r02 as --autopilot-runs asks\); "
                     r"deselected 2 with no cassette: cases/dp/sensor_copy.yaml \(2\)", explicit.stdout.str())


def test_under_xdist_the_controller_prints_the_workers_line(pytester, capsys):
    assert cli.main(["init", str(pytester.path)]) == 0
    capsys.readouterr()
    result = pytester.runpytest_subprocess("cases", "-n", "2", "--autopilot-recorded-only", "--record-mode", "none")
    assert "--autopilot-recorded-only: kept 0 run(s) with a cassette (every recorded repetition of each case); " \
           "deselected 1 with no cassette: cases/dp/sensor_means.yaml (1)" in result.stdout.str()
