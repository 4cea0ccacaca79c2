"""Read which source snapshot Bytewax would resume from, so the MQTT source acknowledges exactly the
messages whose effects are already in a committed recovery snapshot.

Bytewax 0.21 keeps recovery data in SQLite partitions (`part-N.sqlite3`): `commits(part_index,
commit_epoch)` and `snaps(step_id, state_key, snap_epoch, ser_change)`. On resume it loads, per state key,
the latest snapshot whose epoch is at most the commit epoch. The probe asks the same question. The layout
is Bytewax's (pinned to 0.21.1); `tests/flows/test_iot_flow.py` fails if it changes.

The question is asked in a reader process of its own (`commit_reader.py`), never in the flow's process:
Bytewax links its own copy of SQLite, and a second copy in the same process (Python's `sqlite3`) breaks
SQLite's locking, because POSIX locks belong to the process. Opening the WAL index from the second copy
could truncate the shared-memory file under Bytewax's mapping, and the flow died of SIGBUS (reproduced:
`tests/flows/test_recovery_probe.py`). One reader per recovery dir serves every partition of the process.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import pickle
import select
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

_SCRIPT = Path(__file__).with_name("commit_reader.py")
_ANSWER_TIMEOUT_S = 10.0  # the reader's own SQLite busy timeout is 1 s per partition


class _Reader:
    """One reader process and its pipes; a request and its answer happen under one lock."""

    def __init__(self, recovery_dir: Path) -> None:
        self.recovery_dir = recovery_dir
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None

    def ask(self, step_id: str, state_key: str) -> bytes | None:
        with self._lock:
            try:
                proc = self._proc = self._proc or self._start()
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write(json.dumps([step_id, state_key]).encode() + b"\n")
                proc.stdin.flush()
                size = struct.unpack(">q", self._read(proc, 8))[0]
                return None if size < 0 else self._read(proc, size)
            except (OSError, EOFError, TimeoutError):
                self._stop()  # a dead or stuck reader: the next probe starts a fresh one
                return None

    def _start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-I", "-S", str(_SCRIPT), str(self.recovery_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
        )

    @staticmethod
    def _read(proc: subprocess.Popen[bytes], n: int) -> bytes:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        chunks: list[bytes] = []
        while n:
            if not select.select([fd], [], [], _ANSWER_TIMEOUT_S)[0]:
                msg = f"the recovery reader gave no answer within {_ANSWER_TIMEOUT_S} s"
                raise TimeoutError(msg)
            chunk = os.read(fd, n)
            if not chunk:
                msg = "the recovery reader ended"
                raise EOFError(msg)
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError):  # it is gone already
                proc.stdin.close()  # the reader ends at end of input
        try:
            proc.wait(2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def close(self) -> None:
        with self._lock:
            self._stop()


_readers: dict[Path, _Reader] = {}
_readers_lock = threading.Lock()


def _reader(recovery_dir: Path) -> _Reader:
    key = recovery_dir.resolve()
    with _readers_lock:
        if key not in _readers:
            _readers[key] = _Reader(key)
        return _readers[key]


@atexit.register
def _close_readers() -> None:
    with _readers_lock:
        for r in _readers.values():
            r.close()
        _readers.clear()


class CommitProbe:
    """The committed snapshot of one source partition (`step_id`, `state_key`) in `recovery_dir`."""

    def __init__(self, recovery_dir: Path, step_id: str, state_key: str) -> None:
        self.recovery_dir = Path(recovery_dir)
        self.step_id = step_id
        self.state_key = state_key

    def committed(self) -> Any | None:
        """The snapshot Bytewax would resume this partition from, or None (no commit yet, or the store was
        busy: the caller asks again later)."""
        if not any(self.recovery_dir.glob("*.sqlite3")):
            return None
        blob = _reader(self.recovery_dir).ask(self.step_id, self.state_key)
        return None if blob is None else pickle.loads(blob)  # Bytewax's own recovery store, written by this flow
