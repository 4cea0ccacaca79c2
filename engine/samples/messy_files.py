"""A seeded, messy corpus of sensor files covering every ingestion trap, with the expected outcome.

Each file mixes good records with known bad ones; `Expected` says, per file, how many records arrive and
how many must be rejected, and for the whole corpus how many distinct readings must be stored. Files are
named so the extension never tells the format (detection is by content).
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

BASE = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)


@dataclass
class Expected:
    """Per file: received and rejected; `stored` = accepted + duplicates for that file."""

    received: int
    rejected: int
    stored: int


@dataclass
class Corpus:
    root: Path
    files: dict[str, Expected] = field(default_factory=dict)
    distinct_good: int = 0  # readings that must end up in `readings` after one run of the whole corpus
    rejected_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def received(self) -> int:
        return sum(e.received for e in self.files.values())

    @property
    def rejected(self) -> int:
        return sum(e.rejected for e in self.files.values())


def _reading(i: int, rng: random.Random) -> dict:
    return {
        "device_id": f"dev-{i % 17:03d}",
        "ts": BASE + dt.timedelta(seconds=37 * i),
        "temperature_c": round(rng.uniform(-10, 40), 2),
        "humidity_pct": round(rng.uniform(10, 90), 1),
        "pressure_hpa": round(rng.uniform(980, 1040), 1),
        "vibration_g": round(rng.uniform(0, 3), 3),
    }


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Book:
    def __init__(self, corpus: Corpus) -> None:
        self.c = corpus

    def file(self, name: str, good: int, bad: dict[str, int], dups: int = 0) -> None:
        rejected = sum(bad.values())
        self.c.files[name] = Expected(received=good + rejected + dups, rejected=rejected, stored=good + dups)
        self.c.distinct_good += good
        for reason, n in bad.items():
            self.c.rejected_by_reason[reason] = self.c.rejected_by_reason.get(reason, 0) + n

    def unreadable(self, name: str) -> None:
        self.file(name, 0, {"unreadable_file": 1})


def write_messy_corpus(root: Path, *, rows: int = 200, seed: int = 7) -> Corpus:
    """Write the corpus under `root` and return what ingesting it must give."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    corpus = Corpus(root)
    book = _Book(corpus)
    i = 0

    def take(n: int) -> list[dict]:
        nonlocal i
        out = [_reading(i + k, rng) for k in range(n)]
        i += n
        return out

    # 1. Vendor A: semicolons, decimal commas, a BOM, CRLF, aliased headers, a quoted note with ';' and a newline.
    good = take(rows)
    lines = ["Device;Temp;Humidity;Timestamp;Note"]
    for k, r in enumerate(good):
        note = '"calibrated; see\nlog"' if k % 50 == 0 else "ok"
        temp = "NA" if k % 40 == 3 else f"{r['temperature_c']}".replace(".", ",")
        lines.append(f"{r['device_id']};{temp};{r['humidity_pct']};{r['ts'].strftime('%Y-%m-%d %H:%M:%S')};{note}")
    lines.append(f"{good[5]['device_id']};20,0;50;{int(good[5]['ts'].timestamp())};same instant, epoch notation")
    bad_a = [
        "dev-001;200,5;50;2024-03-02 00:00:00;too hot",  # out_of_range
        ";21,0;50;2024-03-02 00:00:01;no device",  # missing_field
        "dev-002;21,0;50;yesterday;bad ts",  # bad_type
        "dev-003;N/A;n/a;2024-03-02 00:00:02;nothing measured",  # no_measurement
        "dev-004;21,0;50;2024-03-02 00:00:03;extra;fields;here",  # malformed_row
    ]
    lines[3:3] = bad_a
    (root / "vendor_a.dat").write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")
    book.file(
        "vendor_a.dat",
        rows,
        {"out_of_range": 1, "missing_field": 1, "bad_type": 1, "no_measurement": 1, "malformed_row": 1},
        dups=1,
    )
    vendor_a = good

    # 2. Vendor B: a JSON array, epoch milliseconds, numbers as strings, aliases, an extra field.
    good = take(rows)
    items: list[object] = [
        {
            "sensor_id": r["device_id"],
            "time": int(r["ts"].timestamp() * 1000),
            "temperature": str(r["temperature_c"]),
            "rh": r["humidity_pct"],
            "firmware": "1.2.3",
        }
        for r in good
    ]
    items[10:10] = [
        42,  # not_an_object
        {"sensor_id": "dev-001", "time": 1709251200000, "temperature": "hot"},  # bad_type
        {"sensor_id": "dev-001", "time": 1709251200000, "rh": 150},  # out_of_range
        {"sensor_id": "dev-001", "time": 915148800, "rh": 50},  # out_of_range (1999)
    ]
    (root / "vendor_b.txt").write_text(json.dumps(items, indent=1))
    book.file("vendor_b.txt", rows, {"not_an_object": 1, "bad_type": 1, "out_of_range": 2})

    # 3. NDJSON logs: offsets, blank lines, a broken line, an invalid id.
    good = take(rows)
    out = []
    for r in good:
        local = r["ts"].astimezone(dt.timezone(dt.timedelta(hours=2)))
        out.append(
            json.dumps(
                {
                    "device_id": r["device_id"],
                    "timestamp": local.isoformat(),
                    "pressure": r["pressure_hpa"],
                    "vibration": r["vibration_g"],
                }
            )
        )
    out[7:7] = [
        "",
        '{"device_id": "dev-009", "timestamp": ',
        "",
        json.dumps({"device_id": "bad id!", "timestamp": "2024-03-01T00:00:00Z", "pressure": 1000}),
        json.dumps({"device_id": "dev-009", "timestamp": "2024-03-01T00:00:00Z", "vibration": -1}),
    ]
    (root / "logs.log").write_text("\n".join(out) + "\n")
    book.file("logs.log", rows, {"bad_json": 1, "invalid_value": 1, "out_of_range": 1})

    # 4. Parquet export: typed columns, NaN as missing, one out-of-range value.
    good = take(rows)
    temps = [float("nan") if k % 25 == 0 else r["temperature_c"] for k, r in enumerate(good)]
    table = pa.table(
        {
            "device_id": [r["device_id"] for r in good] + ["dev-010"],
            "ts": pa.array([r["ts"] for r in good] + [BASE], pa.timestamp("us", tz="UTC")),
            "temperature_c": [*temps, 500.0],
            "humidity_pct": [r["humidity_pct"] for r in good] + [40.0],
        }
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    (root / "export.bin").write_bytes(buf.getvalue())
    book.file("export.bin", rows, {"out_of_range": 1})

    # 5. gzip'd NDJSON with no telling extension.
    good = take(rows)
    body = (
        "\n".join(
            json.dumps({"device": r["device_id"], "datetime": r["ts"].timestamp(), "temp": r["temperature_c"]})
            for r in good
        )
        + "\n"
        + json.dumps({"device": "dev-001", "datetime": "soon", "temp": 1})
        + "\n"
    )
    (root / "archive.dat").write_bytes(gzip.compress(body.encode()))
    book.file("archive.dat", rows, {"bad_type": 1})

    # 6. Tab-separated, gzip'd, a padded and hyphenated header.
    good = take(rows)
    body = " Device-ID \tTimestamp\tVibration\n" + "".join(
        f"{r['device_id']}\t{_iso(r['ts'])}\t{r['vibration_g']}\n" for r in good
    )
    (root / "tabbed.csv.gz.bak").write_bytes(gzip.compress(body.encode()))
    book.file("tabbed.csv.gz.bak", rows, {})

    # 7. A replay of vendor A in other notations: every record is a duplicate of one already stored.
    body = "device_id,ts,temperature_c\n" + "".join(
        f"{r['device_id']},{_iso(r['ts'])},{r['temperature_c']}\n" for r in vendor_a[:50]
    )
    (root / "replay.csv").write_text(body)
    book.file("replay.csv", 0, {}, dups=50)

    # 8. Files that cannot be read at all.
    (root / "random.bin").write_bytes(bytes(rng.getrandbits(8) for _ in range(4096)))
    book.unreadable("random.bin")
    (root / "empty.csv").write_bytes(b"")
    book.unreadable("empty.csv")
    (root / "truncated.parquet").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    book.unreadable("truncated.parquet")
    return corpus
