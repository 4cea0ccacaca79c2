"""Read which source snapshot Bytewax would resume from, so the MQTT source acknowledges exactly the
messages whose effects are already in a committed recovery snapshot.

Bytewax 0.21 keeps recovery data in SQLite partitions (`part-N.sqlite3`): `commits(part_index,
commit_epoch)` and `snaps(step_id, state_key, snap_epoch, ser_change)`. On resume it loads, per state key,
the latest snapshot whose epoch is at most the commit epoch. The probe asks the same question. The layout
is Bytewax's (pinned to 0.21.1); `tests/flows/test_iot_source.py` fails if it changes.
"""

from __future__ import annotations

import pickle
import sqlite3
from pathlib import Path
from typing import Any


class CommitProbe:
    """The committed snapshot of one source partition (`step_id`, `state_key`) in `recovery_dir`."""

    def __init__(self, recovery_dir: Path, step_id: str, state_key: str) -> None:
        self.recovery_dir = Path(recovery_dir)
        self.step_id = step_id
        self.state_key = state_key

    def committed(self) -> Any | None:
        parts = sorted(self.recovery_dir.glob("*.sqlite3"))
        if not parts:
            return None
        try:
            cons = [sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=1.0) for p in parts]
        except sqlite3.Error:
            return None
        try:
            commits = []
            for con in cons:
                row = con.execute("SELECT min(commit_epoch) FROM commits").fetchone()
                if row is None or row[0] is None:
                    return None
                commits.append(int(row[0]))
            epoch = min(commits)
            best: tuple[int, bytes | None] | None = None
            for con in cons:
                row = con.execute(
                    "SELECT snap_epoch, ser_change FROM snaps WHERE step_id = ? AND state_key = ? AND snap_epoch <= ? "
                    "ORDER BY snap_epoch DESC LIMIT 1",
                    (self.step_id, self.state_key, epoch),
                ).fetchone()
                if row is not None and (best is None or row[0] > best[0]):
                    best = (int(row[0]), row[1])
        except sqlite3.Error:
            return None  # busy or mid-migration: try again on the next probe
        finally:
            for con in cons:
                con.close()
        if best is None or best[1] is None:
            return None
        return pickle.loads(best[1])  # Bytewax's own recovery store, written by this flow
