"""Format detection looks at content, never at the extension; unreadable files are one clear error."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.errors import UnreadableFileError
from engine.io import Format, detect


def _parquet_bytes() -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table({"device_id": ["a"], "ts": [1700000000], "temperature_c": [1.0]}), buf)
    return buf.getvalue()


CASES = {
    "comma.json": (b"device_id,ts,temp\nd1,2024-01-01,1\n", Format.CSV, ","),
    "semi.parquet": (b"\xef\xbb\xbfdevice;ts;temp\nd1;2024-01-01;1,5\n", Format.CSV, ";"),
    "tab.csv": (b"device\tts\ttemp\nd1\t2024-01-01\t1\n", Format.CSV, "\t"),
    "quoted.txt": (b'note,device,ts\n"a, b\nc",d1,2024\n"x",d2,2024\n', Format.CSV, ","),
    "array.csv": (b'  [{"device_id": "d1"}]', Format.JSON, None),
    "lines.json": (b'{"a": 1}\n{"a": 2}\n', Format.NDJSON, None),
    "table.csv": (_parquet_bytes(), Format.PARQUET, None),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("gz", [False, True])
def test_detect_by_content(tmp_path: Path, name: str, gz: bool) -> None:
    body, fmt, delim = CASES[name]
    path = tmp_path / name
    path.write_bytes(gzip.compress(body) if gz else body)
    d = detect(path)
    assert (d.format, d.gzipped, d.delimiter) == (fmt, gz, delim)


def test_semicolon_wins_when_commas_are_decimal_marks(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_text("device;temp;hum\nd1;21,5;40,1\nd2;22,5;41,0\n")
    assert detect(path).delimiter == ";"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty"),
        (b"   \n\n", "whitespace"),
        (bytes(range(256)) * 4, "binary"),
        (b"just one line of prose without delimiters\nand another\n", "not CSV"),
        (b"\xff\xfe\x00d\x00e\x00v", "binary"),
        (b"caf\xe9;temp\nx;1\n", "UTF-8"),
        (b"\x1f\x8b\x08\x00garbage-not-gzip", "gzip"),
    ],
)
def test_unreadable_files_raise_one_clear_error(tmp_path: Path, body: bytes, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(body)
    with pytest.raises(UnreadableFileError, match=message) as info:
        detect(path)
    assert info.value.reason == "unreadable_file"


def test_large_json_array_is_still_json(tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_text(json.dumps([{"device_id": f"d{i}", "ts": i} for i in range(20000)], indent=2))
    assert detect(path).format is Format.JSON
