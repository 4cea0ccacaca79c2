"""The recovery reader process behind `CommitProbe` (see its docstring for why it is a process of its own).

Run as a script with the standard library only: `python -I -S commit_reader.py RECOVERY_DIR`. Each request
is one JSON line `[step_id, state_key]` on stdin; each answer is an 8-byte big-endian signed length, then
that many bytes: the committed snapshot as Bytewax stored it, or nothing when the length is -1 (no commit
yet, no such partition, or the store was busy). The process ends when stdin closes, that is, with the flow.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import struct
import sys
from pathlib import Path

_COMMITS = "SELECT min(commit_epoch) FROM commits"
_SNAP = (
    "SELECT snap_epoch, ser_change FROM snaps WHERE step_id = ? AND state_key = ? AND snap_epoch <= ? "
    "ORDER BY snap_epoch DESC LIMIT 1"
)


def committed(recovery_dir: Path, step_id: str, state_key: str) -> bytes | None:
    """Bytewax 0.21's resume rule: per state key, the latest snapshot at or before the oldest commit epoch
    over all partitions (`commits(part_index, commit_epoch)`, `snaps(step_id, state_key, snap_epoch,
    ser_change)`)."""
    parts = sorted(recovery_dir.glob("*.sqlite3"))
    if not parts:
        return None
    cons: list[sqlite3.Connection] = []
    try:
        for p in parts:
            cons.append(sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=1.0))
        commits = []
        for con in cons:
            row = con.execute(_COMMITS).fetchone()
            if row is None or row[0] is None:
                return None
            commits.append(int(row[0]))
        epoch = min(commits)
        best: tuple[int, bytes | None] | None = None
        for con in cons:
            row = con.execute(_SNAP, (step_id, state_key, epoch)).fetchone()
            if row is not None and (best is None or row[0] > best[0]):
                best = (int(row[0]), row[1])
    except sqlite3.Error:
        return None  # busy or mid-migration: the probe asks again later
    finally:
        for con in cons:
            con.close()
    return None if best is None else best[1]


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the flow decides, stdin ends us
    recovery_dir = Path(sys.argv[1])
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        step_id, state_key = json.loads(line)
        blob = committed(recovery_dir, step_id, state_key)
        out.write(struct.pack(">q", -1 if blob is None else len(blob)) + (blob or b""))
        out.flush()


if __name__ == "__main__":
    main()
