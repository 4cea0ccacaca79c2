"""Readers: one file -> batches of raw columns with positions, plus the records that could not be parsed.

Each reader yields `RawBatch`es of at most `batch_rows` records. A record that cannot even be parsed (a CSV
row with the wrong number of fields, an NDJSON line that is not JSON) travels in the batch as a `ParseError`,
so `received = rows + parse errors` holds per batch. Readers are resumable: `batches(skip=k)` skips the first
k batches without yielding them (Bytewax recovery resumes from a batch count).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from engine.errors import UnreadableFileError
from engine.io.formats import Detected, Format, detect, head_bytes, open_stream
from engine.validation.rules import BAD_JSON, NOT_AN_OBJECT, UNREADABLE_FILE, to_text

DEFAULT_BATCH_ROWS = 100_000
_CSV_BLOCK = 4 << 20


@dataclass(frozen=True, slots=True)
class ParseError:
    """A record the reader could not turn into fields."""

    position: str
    raw: str
    reason: str
    message: str


@dataclass(slots=True)
class RawBatch:
    """Raw columns as the file named them; `numbers[i]` says where row i came from."""

    frame: pl.DataFrame
    numbers: pl.Series  # where each row came from: line, record or row number (see `unit`)
    unit: str  # "line" (CSV, NDJSON), "record" (JSON array) or "row" (Parquet)
    raw: pl.Series | None = None  # the record's original text, where the format has one (JSON)
    errors: list[ParseError] = field(default_factory=list)

    def positions(self, idx: pl.Series) -> list[str]:
        """'line 17' and the like, for the rows at indices `idx` (only rejects need them as text)."""
        return [f"{self.unit} {n}" for n in self.numbers.gather(idx).to_list()]

    @property
    def received(self) -> int:
        return self.frame.height + len(self.errors)

    def raw_text(self, idx: pl.Series) -> list[str]:
        """The original records at row indices `idx`, as text (JSON objects for tabular formats)."""
        if self.raw is not None:
            return self.raw.gather(idx).to_list()
        enc = msgspec.json.Encoder()
        return [enc.encode(r).decode() for r in self.frame[idx].to_dicts()]


class FileReader:
    """Open a file once: detect its format, then read it in batches."""

    def __init__(self, path: Path, batch_rows: int = DEFAULT_BATCH_ROWS) -> None:
        self.path = path
        self.batch_rows = batch_rows
        self.detected: Detected = detect(path)

    @property
    def decimal_comma(self) -> bool:
        """A semicolon-delimited CSV may write decimals with a comma ('21,5')."""
        return self.detected.format is Format.CSV and self.detected.delimiter == ";"

    def batches(self, skip: int = 0) -> Iterator[RawBatch]:
        fmt = self.detected.format
        gen = {
            Format.CSV: self._csv,
            Format.JSON: self._json,
            Format.NDJSON: self._ndjson,
            Format.PARQUET: self._parquet,
        }[fmt]()
        for i, batch in enumerate(gen):
            if i >= skip:
                yield batch

    # -- CSV ------------------------------------------------------------------------------------------
    def _csv_header(self) -> list[str]:
        head, _ = head_bytes(self.path)
        text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
        row = next(csv.reader(io.StringIO(text), delimiter=self.detected.delimiter or ","), [])
        names: list[str] = []
        for i, name in enumerate(row):
            base = name or f"column_{i + 1}"
            unique, k = base, 2
            while unique in names:
                unique, k = f"{base}_{k}", k + 1
            names.append(unique)
        return names

    def _csv(self) -> Iterator[RawBatch]:
        names = self._csv_header()
        skipped: list[tuple[int, str, int]] = []

        def on_invalid(row: Any) -> str:
            skipped.append((row.number, row.text, row.actual_columns))
            return "skip"

        stream = open_stream(self.path, self.detected.gzipped)
        try:
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(
                    use_threads=False, block_size=_CSV_BLOCK, column_names=names, skip_rows=1
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=self.detected.delimiter or ",",
                    newlines_in_values=True,
                    invalid_row_handler=on_invalid,
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False
                ),
            )
        except (pa.ArrowInvalid, OSError, EOFError) as exc:
            stream.close()
            msg = f"cannot read as CSV: {exc}"
            raise UnreadableFileError(UNREADABLE_FILE, msg) from exc
        numbering = _RowNumbers(first=2)  # line 1 is the header
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        with stream:
            while True:
                try:
                    rb = reader.read_next_batch()
                except StopIteration:
                    break
                except (pa.ArrowInvalid, OSError, EOFError) as exc:
                    msg = f"CSV reading stopped: {exc}"
                    raise UnreadableFileError(UNREADABLE_FILE, msg) from exc
                pending.append(rb)
                pending_rows += rb.num_rows
                if pending_rows >= self.batch_rows:
                    yield self._csv_batch(pending, skipped, numbering, len(names))
                    pending, pending_rows, skipped[:] = [], 0, []
            if pending or skipped:
                yield self._csv_batch(pending, skipped, numbering, len(names))

    @staticmethod
    def _csv_batch(
        pending: list[pa.RecordBatch], skipped: list[tuple[int, str, int]], numbering: _RowNumbers, width: int
    ) -> RawBatch:
        table = pa.Table.from_batches(pending) if pending else None
        frame = pl.from_arrow(table) if table is not None else pl.DataFrame()
        assert isinstance(frame, pl.DataFrame)
        lines = numbering.assign(frame.height, [s[0] for s in skipped])
        errors = [
            ParseError(f"line {no}", text, "malformed_row", f"expected {width} fields, found {found}")
            for no, text, found in skipped
        ]
        return RawBatch(frame, pl.Series("number", lines, pl.Int64), "line", None, errors)

    # -- JSON -----------------------------------------------------------------------------------------
    def _json(self) -> Iterator[RawBatch]:
        with open_stream(self.path, self.detected.gzipped) as fh:
            data = fh.read()
        try:
            doc = msgspec.json.decode(data)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # the latter: a string with bad UTF-8
            msg = f"not valid JSON: {exc}"
            raise UnreadableFileError(BAD_JSON, msg) from exc
        if not isinstance(doc, list):
            msg = f"a JSON file must hold an array of objects, found a top-level {type(doc).__name__}"
            raise UnreadableFileError(UNREADABLE_FILE, msg)
        enc = msgspec.json.Encoder()
        batch = _JsonBatch("record")
        for i, obj in enumerate(doc, 1):
            batch.add(i, obj, enc.encode(obj).decode())
            if batch.size >= self.batch_rows:
                yield batch.flush()
        if batch.size:
            yield batch.flush()

    # -- NDJSON ---------------------------------------------------------------------------------------
    def _ndjson(self) -> Iterator[RawBatch]:
        decode = msgspec.json.Decoder().decode
        batch = _JsonBatch("line")
        with open_stream(self.path, self.detected.gzipped) as fh:
            lineno = 0
            while True:
                try:
                    line = fh.readline()
                except (OSError, EOFError) as exc:
                    msg = f"reading stopped after line {lineno}: {exc}"
                    raise UnreadableFileError(UNREADABLE_FILE, msg) from exc
                if not line:
                    break
                lineno += 1
                body = line.strip()
                if lineno == 1:
                    body = body.removeprefix(b"\xef\xbb\xbf")
                if not body:
                    continue
                text = body.decode("utf-8", errors="replace")
                try:
                    batch.add(lineno, decode(body), text)
                except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # the latter: bad UTF-8 in a string
                    batch.errors.append(ParseError(f"line {lineno}", text, BAD_JSON, f"not valid JSON: {exc}"))
                if batch.size >= self.batch_rows:
                    yield batch.flush()
        if batch.size:
            yield batch.flush()

    # -- Parquet --------------------------------------------------------------------------------------
    def _parquet(self) -> Iterator[RawBatch]:
        try:
            if self.detected.gzipped:
                with open_stream(self.path, True) as fh:
                    source: Any = pa.BufferReader(fh.read())
            else:
                source = str(self.path)
            pf = pq.ParquetFile(source)
        except (pa.ArrowInvalid, OSError, EOFError) as exc:
            msg = f"cannot read as Parquet (truncated or corrupt?): {exc}"
            raise UnreadableFileError(UNREADABLE_FILE, msg) from exc
        row = 0
        try:
            for rb in pf.iter_batches(batch_size=self.batch_rows):
                frame = pl.from_arrow(rb)
                assert isinstance(frame, pl.DataFrame)
                numbers = pl.int_range(row + 1, row + 1 + frame.height, dtype=pl.Int64, eager=True)
                row += frame.height
                yield RawBatch(frame, numbers, "row")
        except (pa.ArrowInvalid, OSError, EOFError) as exc:
            msg = f"Parquet reading stopped after row {row}: {exc}"
            raise UnreadableFileError(UNREADABLE_FILE, msg) from exc


class _JsonBatch:
    """Decoded JSON records gathered into one RawBatch; a non-object is a parse error at its position."""

    def __init__(self, unit: str) -> None:
        self.unit = unit
        self._reset()

    def _reset(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.numbers: list[int] = []
        self.raws: list[str] = []
        self.errors: list[ParseError] = []

    @property
    def size(self) -> int:
        return len(self.rows) + len(self.errors)

    def add(self, number: int, obj: object, text: str) -> None:
        if isinstance(obj, dict):
            self.rows.append(obj)
            self.numbers.append(number)
            self.raws.append(text)
        else:
            what = type(obj).__name__
            self.errors.append(
                ParseError(f"{self.unit} {number}", text, NOT_AN_OBJECT, f"expected a JSON object, got {what}")
            )

    def flush(self) -> RawBatch:
        out = RawBatch(
            _text_frame(self.rows),
            pl.Series("number", self.numbers, pl.Int64),
            self.unit,
            pl.Series("raw", self.raws, pl.String),
            self.errors,
        )
        self._reset()
        return out


def _text_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """JSON objects -> one String column per key (values through `to_text`, as the per-record path sees them)."""
    keys: dict[str, None] = {}
    for r in rows:
        keys.update(dict.fromkeys(r))
    cols = {}
    for k in keys:
        values = [r.get(k) for r in rows]
        if not all(v is None or type(v) is str for v in values):
            values = [to_text(v) for v in values]
        cols[k] = pl.Series(k, values, pl.String)
    return pl.DataFrame(cols, height=len(rows)) if cols else pl.DataFrame(height=len(rows))


class _RowNumbers:
    """Numbers valid CSV rows: they take, in order, the row numbers the invalid-row handler did not report."""

    def __init__(self, first: int) -> None:
        self.next = first

    def assign(self, n: int, skipped: list[int]) -> np.ndarray:
        taken = np.asarray(sorted(s for s in skipped if s >= self.next), dtype=np.int64)
        candidates = np.arange(self.next, self.next + n + len(taken), dtype=np.int64)
        numbers = np.setdiff1d(candidates, taken, assume_unique=True)[:n]
        last = max(int(numbers[-1]) if n else self.next - 1, int(taken[-1]) if len(taken) else 0)
        self.next = last + 1
        return numbers


def read_all(path: Path, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[RawBatch]:
    """Every batch of one file (a convenience for tests and batch jobs)."""
    yield from FileReader(path, batch_rows).batches()
