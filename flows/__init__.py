"""Bytewax dataflows: wiring only; the logic they call lives in `engine` and `models`."""
