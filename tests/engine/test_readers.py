"""Readers: positions point at the record in the file, parse errors travel with their batch, resume skips."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.errors import UnreadableFileError
from engine.io import FileReader
from engine.io.formats import SNIFF_BYTES


def test_csv_positions_and_malformed_rows(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text('device,ts,temp\nd1,1,2\nd2,1\nd3,1,2,3,4\nd4,1,2\n"d5","1","x, y"\n')
    [batch] = list(FileReader(path).batches())
    assert batch.frame["device"].to_list() == ["d1", "d4", "d5"]
    assert batch.numbers.to_list() == [2, 5, 6]
    assert [(e.position, e.reason, e.raw) for e in batch.errors] == [
        ("line 3", "malformed_row", "d2,1"),
        ("line 4", "malformed_row", "d3,1,2,3,4"),
    ]
    assert batch.received == 5


def test_csv_row_numbers_stay_right_across_batches(tmp_path: Path) -> None:
    lines = ["device,ts,temp"] + [f"d{i},1,2" if i % 7 else f"d{i},broken" for i in range(1, 200)]
    path = tmp_path / "a.csv"
    path.write_text("\n".join(lines) + "\n")
    seen = {}
    for batch in FileReader(path, batch_rows=10).batches():
        for dev, no in zip(batch.frame["device"].to_list(), batch.numbers.to_list(), strict=True):
            seen[dev] = no
        for e in batch.errors:
            seen[e.raw.split(",")[0]] = int(e.position.split()[1])
    assert all(seen[f"d{i}"] == i + 1 for i in range(1, 200))


def test_csv_quoted_newlines_bom_and_duplicate_headers(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b'\xef\xbb\xbfdevice,note,note\r\nd1,"line1\r\nline2",x\r\nd2,plain,y\r\n')
    [batch] = list(FileReader(path).batches())
    assert batch.frame.columns == ["device", "note", "note_2"]
    assert batch.frame["note"].to_list() == ["line1\r\nline2", "plain"]


def test_ndjson_lines_blank_lines_and_bad_json(tmp_path: Path) -> None:
    path = tmp_path / "a"
    path.write_bytes(gzip.compress(b'{"a": 1}\n\n{"a": \n[1, 2]\n  {"a": "x", "b": true}  \n'))
    [batch] = list(FileReader(path).batches())
    assert batch.numbers.to_list() == [1, 5]
    assert batch.frame.to_dicts() == [{"a": "1", "b": None}, {"a": "x", "b": "true"}]
    assert [(e.position, e.reason) for e in batch.errors] == [("line 3", "bad_json"), ("line 4", "not_an_object")]
    assert batch.raw is not None and batch.raw.to_list()[1] == '{"a": "x", "b": true}'


def test_json_array_records_and_non_objects(tmp_path: Path) -> None:
    path = tmp_path / "a"
    path.write_text(json.dumps([{"a": 1}, "oops", {"a": 2.5}]))
    batches = list(FileReader(path, batch_rows=2).batches())
    assert [b.numbers.to_list() for b in batches] == [[1], [3]]
    assert batches[0].errors[0].position == "record 2"
    assert sum(b.received for b in batches) == 3


def test_json_top_level_object_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "a"
    path.write_text('[{"a": 1}')  # looks like an array, is truncated
    with pytest.raises(UnreadableFileError, match="not valid JSON"):
        list(FileReader(path).batches())


def test_parquet_keeps_types_and_numbers_rows(tmp_path: Path) -> None:
    buf = io.BytesIO()
    pq.write_table(pa.table({"x": list(range(25))}), buf, row_group_size=10)
    path = tmp_path / "p"
    path.write_bytes(buf.getvalue())
    batches = list(FileReader(path, batch_rows=10).batches())
    assert [b.numbers.to_list()[0] for b in batches] == [1, 11, 21]
    assert batches[0].frame.schema["x"] == batches[0].frame["x"].dtype
    assert batches[1].positions(pl.Series([0, 9], dtype=pl.UInt32)) == ["row 11", "row 20"]


def test_resume_skips_batches_already_done(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("device,ts\n" + "".join(f"d{i},1\n" for i in range(50)))
    all_batches = list(FileReader(path, batch_rows=10).batches())
    resumed = list(FileReader(path, batch_rows=10).batches(skip=3))
    assert [b.frame["device"].to_list() for b in resumed] == [b.frame["device"].to_list() for b in all_batches[3:]]


def test_truncated_gzip_fails_after_what_could_be_read(tmp_path: Path) -> None:
    body = gzip.compress(b"".join(b'{"a": %d}\n' % i for i in range(50000)))
    path = tmp_path / "a"
    path.write_bytes(body[: len(body) // 2])
    got = 0
    with pytest.raises(UnreadableFileError, match="reading stopped"):
        for batch in FileReader(path, batch_rows=1000).batches():
            got += batch.received
    assert got > 0


def test_invalid_utf8_is_bad_json_for_a_line_and_unreadable_for_a_json_file(tmp_path: Path) -> None:
    """msgspec raises UnicodeDecodeError for a string that is not UTF-8: a rejected line, not a crash. (A bad
    byte in the head fails format detection for the whole file; these come after the sniffed head.)"""
    head = b'{"a": "ok"}\n' * (SNIFF_BYTES // 10)
    path = tmp_path / "a.ndjson"
    path.write_bytes(head + b'{"a": "caf\xe9"}\n{"a": "fine"}\n')
    lines = head.count(b"\n")
    batches = list(FileReader(path).batches())
    assert sum(b.received for b in batches) == lines + 2
    assert [(e.position, e.reason) for b in batches for e in b.errors] == [(f"line {lines + 1}", "bad_json")]
    doc = tmp_path / "b.json"
    doc.write_bytes(b"[" + b'{"a": "ok"},' * (SNIFF_BYTES // 10) + b'{"a": "caf\xe9"}]')
    with pytest.raises(UnreadableFileError, match="not valid JSON"):
        list(FileReader(doc).batches())
