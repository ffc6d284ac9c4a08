"""The harness's one error type. Every layer raises it (or a subclass naming the layer) when a
run cannot go on for a reason that is not the model's fault; the runner records its
category and one-line message on the run."""

from __future__ import annotations


class HarnessError(Exception):
    """A run (or a collection) cannot go on; ``category`` is a ``core.records.Category`` value."""

    def __init__(self, category: str, message: str):
        super().__init__(message)
        self.category = category

    @property
    def message(self) -> str:
        return str(self)


class ToolchainMissing(HarnessError):
    """A case needs something this machine lacks; the message holds the install command."""

    def __init__(self, message: str):
        super().__init__("harness_error", message)
