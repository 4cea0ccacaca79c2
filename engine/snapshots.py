"""Versioned state snapshots for Bytewax recovery: one encode and one checked decode for every stateful step.

Pickle is used only for our own process-local recovery state (Bytewax stores it); never for the registry or
anything that crosses a trust boundary.
"""

from __future__ import annotations

import pickle
from typing import Any


def dump_state(state: dict[str, Any], version: int) -> bytes:
    return pickle.dumps({**state, "version": version}, protocol=pickle.HIGHEST_PROTOCOL)


def load_state(blob: bytes, version: int, what: str) -> dict[str, Any]:
    """The snapshot's dict, or ValueError when it was written by another state version."""
    data = pickle.loads(blob)  # our own recovery snapshot (Bytewax state)
    if not isinstance(data, dict) or data.get("version") != version:
        msg = f"{what} state from another version of tidegate: start with a fresh recovery directory"
        raise ValueError(msg)
    return data
