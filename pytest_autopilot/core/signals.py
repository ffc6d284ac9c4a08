"""SIGTERM stops a session the way Ctrl+C does.

``timeout`` and a cancelled CI job stop pytest with SIGTERM, whose default action kills the
process before any report is written. :class:`TerminateAsInterrupt` turns it into a
``KeyboardInterrupt`` in the main thread, so pytest unwinds as after Ctrl+C (runs in flight are
stopped and recorded as incomplete, the partial report is written) and remembers that it was SIGTERM.
"""

from __future__ import annotations

import signal
import threading


class TerminateAsInterrupt:
    def __init__(self) -> None:
        self.received = False
        self._previous = None

    def install(self) -> None:
        """Only from the main thread, and only over the default action: a handler someone else
        installed (an embedding program, a CI runner's shim) is theirs to keep."""
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return
        self._previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.received:  # a second SIGTERM while unwinding: do not interrupt the report being written
            return
        self.received = True
        raise KeyboardInterrupt("SIGTERM")

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None
