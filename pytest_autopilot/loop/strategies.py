"""Repair strategies: how a failed attempt is fed back. The repair loop is the system under
test, so this varies like the model and each strategy is its own test id.

- ``stateless``: the paper's single message (task, previous code, error);
- ``conversation``: the chat so far, the previous answer as an assistant turn and the feedback
  as a user turn;
- ``resample``: the original prompt again without feedback (the independent-retries baseline).
"""

from pytest_autopilot.core.records import DEFAULT_STRATEGY, STRATEGIES  # cases/ checks names below the loop

__all__ = ["DEFAULT_STRATEGY", "STRATEGIES"]
