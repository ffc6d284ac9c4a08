"""Shared ground of every layer: the error type, the records, the stage table, small helpers."""
