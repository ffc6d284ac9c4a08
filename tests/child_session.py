"""How a test runs a child pytest session: in-process unless it starts xdist workers."""

from __future__ import annotations


def run_session(pytester, *args: str):
    """In-process (pytester.runpytest: it shares this worker's imports, litellm's ~3 s among them) unless
    the arguments start xdist workers, whose controller gets its own process."""
    starts_workers = "-n" in args and "no:xdist" not in args
    return (pytester.runpytest_subprocess if starts_workers else pytester.runpytest)(*args)
