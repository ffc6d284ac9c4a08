"""The checkout as a sandboxed run sees it: absent, or read-only around a venv inside it. A checkout
under /tmp or /var/tmp is the exception: the view replaces those with the run's own private, throw-away
ones, so a write to the checkout's path succeeds there and lands nowhere on the host (which the tests
check on the host side)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IN_PRIVATE_TMP = any(REPO.is_relative_to(tmp) for tmp in ("/tmp", "/var/tmp"))
BLOCKED = ("Read-only file system", "No such file or directory")


def checkout_write_blocked(outcome: str) -> bool:
    """A run's attempt to write into the checkout failed, or went to its private /tmp."""
    return outcome.endswith(BLOCKED) or (IN_PRIVATE_TMP and outcome == "written")
