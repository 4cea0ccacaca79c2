"""The spool: how the server hands interactions to the interactions flow without touching DuckDB.

The server appends one JSON line per received record to `DIR/interactions-<start>-<pid>.ndjson` (accepted
records as the validated values, rejected ones with their raw text, reason and message). The interactions
flow (`flows.interactions`) reads the segments in name order, remembers how far it got (Bytewax state),
stores accepted records in DuckDB and rejects in the dead letter. A segment is closed at `segment_bytes`
and a new one opened; the flow never needs the server, and the server never waits for the flow.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Literal

import msgspec

PREFIX = "interactions-"
SUFFIX = ".ndjson"


class SpoolLine(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One received record. `record` for accepted ones; `raw`, `reason`, `message` for rejects."""

    kind: Literal["ok", "reject"]
    received_at: dt.datetime
    position: str  # e.g. "request 3f2a… record 4"
    record: dict[str, str | float | None] | None = None
    raw: str | None = None
    reason: str | None = None
    message: str | None = None


_encoder = msgspec.json.Encoder()
line_decoder = msgspec.json.Decoder(SpoolLine)


def segments(folder: Path) -> list[Path]:
    """The spool's segments, oldest first (names sort by start time)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.startswith(PREFIX) and p.name.endswith(SUFFIX))


class Spool:
    """Append-only writer (one per server process). `append` is one `write` of whole lines."""

    def __init__(self, folder: Path, *, segment_bytes: int = 64 << 20) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = segment_bytes
        self._fd: int | None = None
        self._size = 0
        self._seq = 0

    def _open(self) -> int:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        self._seq += 1
        path = self.folder / f"{PREFIX}{stamp}-{os.getpid()}-{self._seq:04d}{SUFFIX}"
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._size = 0
        return self._fd

    def append(self, lines: list[SpoolLine]) -> None:
        if not lines:
            return
        data = b"".join(_encoder.encode(line) + b"\n" for line in lines)
        fd = self._fd if self._fd is not None and self._size < self.segment_bytes else self._rotate()
        os.write(fd, data)
        self._size += len(data)

    def _rotate(self) -> int:
        self.close()
        return self._open()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
