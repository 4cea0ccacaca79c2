"""Files as a resumable stream of chunks: discover paths, hash them, read them batch by batch."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import UnreadableFileError, UsageError
from engine.hashing import sha256_file
from engine.io.readers import DEFAULT_BATCH_ROWS, FileReader, RawBatch

Clock = Callable[[], dt.datetime]
_IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".swp")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class FileChunk:
    """One batch of one file, and whether its CSV writes decimals with a comma."""

    source: str
    seq: int
    batch: RawBatch
    decimal_comma: bool


@dataclass
class FileEnd:
    """The file is done: its totals, and a file-level reject when it could not be read (to the end)."""

    source: str
    sha256: str | None
    format: str | None
    received: int
    started_at: dt.datetime
    finished_at: dt.datetime
    status: str = "ok"
    error_reason: str | None = None
    error_message: str | None = None
    chunks: int = 0
    unknown_columns: list[str] = field(default_factory=list)


def discover(paths: list[Path]) -> list[Path]:
    """Files named, plus files under folders named (recursively, sorted); hidden and partial files skipped."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found.extend(sorted(f for f in p.rglob("*") if f.is_file() and not _ignored(f.relative_to(p))))
        elif p.is_file():
            found.append(p)
        else:
            msg = f"no such file or folder: {p}"
            raise UsageError(msg)
    unique: dict[Path, None] = dict.fromkeys(f.resolve() for f in found)
    return list(unique)


def _ignored(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts) or rel.name.endswith(_IGNORED_SUFFIXES)


def read_file(
    path: Path, *, batch_rows: int = DEFAULT_BATCH_ROWS, skip: int = 0, clock: Clock = utc_now
) -> Iterator[FileChunk | FileEnd]:
    """Chunks of one file, then exactly one FileEnd. `skip` resumes after that many chunks.

    A file that cannot be read at all ends with status 'unreadable'; one that breaks mid-way (a truncated
    gzip, a corrupt Parquet page) ends with status 'partial'. Either way the FileEnd's error is one
    file-level reject, counted as one received record, so received = accepted + rejected + duplicates.
    """
    started = clock()
    source = str(path)
    received = 0
    seq = 0
    fmt: str | None = None
    hashing = _Sha256InBackground(path)  # overlaps with reading; hashlib releases the GIL
    try:
        reader = FileReader(path, batch_rows)
        fmt = reader.detected.label
        for batch in reader.batches():
            received += batch.received
            if seq >= skip:
                yield FileChunk(source, seq, batch, reader.decimal_comma)
            seq += 1
    except UnreadableFileError as exc:
        status = "partial" if seq else "unreadable"
        digest = hashing.result()
        yield FileEnd(source, digest, fmt, received + 1, started, clock(), status, exc.reason, exc.message, seq)
        return
    except OSError as exc:
        digest = hashing.result()
        yield FileEnd(
            source,
            digest,
            fmt,
            received + 1,
            started,
            clock(),
            "unreadable",
            "unreadable_file",
            f"cannot open: {exc.strerror or exc}",
            seq,
        )
        return
    yield FileEnd(source, hashing.result(), fmt, received, started, clock(), chunks=seq)


class _Sha256InBackground:
    def __init__(self, path: Path) -> None:
        self._digest: str | None = None
        self._thread = threading.Thread(target=self._run, args=(path,), name="tidegate-sha256", daemon=True)
        self._thread.start()

    def _run(self, path: Path) -> None:
        try:
            self._digest = sha256_file(path)
        except OSError:
            self._digest = None  # the reader reports why the file cannot be read

    def result(self) -> str | None:
        self._thread.join()
        return self._digest
