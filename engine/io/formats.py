"""Format detection by content, never by extension: gzip, Parquet, JSON array, NDJSON, CSV (, ; or tab)."""

from __future__ import annotations

import csv
import enum
import gzip
import io
import zlib
from dataclasses import dataclass
from pathlib import Path

from engine.errors import UnreadableFileError
from engine.validation.rules import UNREADABLE_FILE

SNIFF_BYTES = 64 * 1024
_DELIMITERS = (",", ";", "\t")


class Format(enum.StrEnum):
    CSV = "csv"
    JSON = "json"
    NDJSON = "ndjson"
    PARQUET = "parquet"


@dataclass(frozen=True, slots=True)
class Detected:
    """What a file holds: its format, whether it is gzip'd, and for CSV the delimiter."""

    format: Format
    gzipped: bool = False
    delimiter: str | None = None

    @property
    def label(self) -> str:
        name = self.format.value
        if self.format is Format.CSV:
            name += {",": "(,)", ";": "(;)", "\t": "(tab)"}[self.delimiter or ","]
        return name + "+gzip" if self.gzipped else name


def head_bytes(path: Path, size: int = SNIFF_BYTES) -> tuple[bytes, bool]:
    """The first `size` bytes of the file's content (decompressed if gzip'd), and whether it was gzip'd."""
    with path.open("rb") as fh:
        head = fh.read(size)
    if head[:2] != b"\x1f\x8b":
        return head, False
    try:
        # Decompress only what the sniffer needs; a truncated member is reported when read for real.
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        with path.open("rb") as fh:
            out = b""
            while len(out) < size:
                chunk = fh.read(64 * 1024)
                if not chunk:
                    break
                out += d.decompress(chunk, size - len(out))
        return out, True
    except zlib.error as exc:
        msg = f"gzip data is corrupt: {exc}"
        raise UnreadableFileError(UNREADABLE_FILE, msg) from exc


def detect(path: Path) -> Detected:
    """Look at the bytes and say what the file is; UnreadableFileError when it is none of our formats."""
    head, gzipped = head_bytes(path)
    if not head:
        msg = "the file is empty" + (" (after gzip)" if gzipped else "")
        raise UnreadableFileError(UNREADABLE_FILE, msg)
    if head[:4] == b"PAR1":
        return Detected(Format.PARQUET, gzipped)
    text = _as_text(head)
    stripped = text.lstrip("\ufeff \t\r\n")
    if not stripped:
        msg = "the file holds only whitespace"
        raise UnreadableFileError(UNREADABLE_FILE, msg)
    if stripped[0] == "[":
        return Detected(Format.JSON, gzipped)
    if stripped[0] == "{":
        return Detected(Format.NDJSON, gzipped)
    delimiter = sniff_delimiter(stripped)
    if delimiter is None:
        msg = "not CSV (no consistent ',', ';' or tab delimiter), JSON, NDJSON or Parquet"
        raise UnreadableFileError(UNREADABLE_FILE, msg)
    return Detected(Format.CSV, gzipped, delimiter)


def _as_text(head: bytes) -> str:
    if b"\x00" in head[:4096]:
        msg = "binary content (NUL bytes) that is not Parquet or gzip"
        raise UnreadableFileError(UNREADABLE_FILE, msg)
    # The sniff window may cut a multi-byte character: ignore errors only in the last 4 bytes.
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 4:
            return head[: exc.start].decode("utf-8")
        msg = f"not UTF-8 text (byte {exc.start}: {exc.reason}); re-encode the file as UTF-8"
        raise UnreadableFileError(UNREADABLE_FILE, msg) from exc


def sniff_delimiter(text: str, max_rows: int = 50) -> str | None:
    """The delimiter whose rows (quotes respected) agree on a field count > 1, or None."""
    best: tuple[int, int, str] | None = None
    # Drop the last line of the window: it may be cut in the middle.
    sample = text if len(text) < SNIFF_BYTES // 2 else text[: text.rfind("\n") + 1] or text
    for delim in _DELIMITERS:
        try:
            reader = csv.reader(io.StringIO(sample), delimiter=delim)
            rows = [r for _, r in zip(range(max_rows), reader, strict=False) if r]
        except csv.Error:
            continue
        if not rows or len(rows[0]) < 2:
            continue
        agree = sum(1 for r in rows if len(r) == len(rows[0]))
        score = (agree, len(rows[0]), delim)
        if agree * 2 > len(rows) and (best is None or score[:2] > best[:2]):
            best = score
    return best[2] if best else None


def open_stream(path: Path, gzipped: bool) -> io.BufferedIOBase:
    """A binary stream of the file's content, decompressed when gzip'd."""
    if gzipped:
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")
