"""pytest-autopilot: measure how well LLMs automate embedded-ML pipelines, as pytest cases."""

__version__ = "0.1.0"
