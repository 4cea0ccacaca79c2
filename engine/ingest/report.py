"""What one ingestion run did, per file and in total: printed as a table or as one JSON object."""

from __future__ import annotations

from pathlib import Path

import msgspec

from engine.errors import TidegateError
from engine.schema import get_schema
from engine.storage.duckdb_store import FileStats, Store

REPORT_WAIT_S = 30.0


class FileReport(msgspec.Struct, kw_only=True):
    source: str
    format: str | None
    status: str
    received: int
    accepted: int
    rejected: int
    duplicates: int
    unknown_columns: list[str]
    sha256: str | None
    duration_s: float | None


class RunReport(msgspec.Struct, kw_only=True):
    run_id: str
    db: str
    schema: str
    received: int
    accepted: int
    rejected: int
    duplicates: int
    files: list[FileReport]
    table_name: str = "readings"

    @classmethod
    def from_store(cls, db: Path, run_id: str, schema: str) -> RunReport:
        # the run is stored already: a reader holding the file for a moment must not cost its report
        with Store(db, read_only=True, wait_s=REPORT_WAIT_S) as store:
            stats = store.run_files(run_id)
        for s in stats:
            if not s.balanced:
                msg = (
                    f"accounting error in {s.source}: received {s.received} != accepted {s.accepted} + "
                    f"rejected {s.rejected} + duplicates {s.duplicates}; please report this as a bug"
                )
                raise TidegateError(msg)
        return cls(
            run_id=run_id,
            db=str(db),
            schema=schema,
            received=sum(s.received for s in stats),
            accepted=sum(s.accepted for s in stats),
            rejected=sum(s.rejected for s in stats),
            duplicates=sum(s.duplicates for s in stats),
            files=[_file(s) for s in stats],
            table_name=get_schema(schema).table,
        )

    def table(self) -> str:
        rows = [("file", "format", "status", "received", "accepted", "rejected", "duplicates")]
        for f in self.files:
            rows.append(
                (
                    Path(f.source).name,
                    f.format or "-",
                    f.status,
                    f"{f.received:,}",
                    f"{f.accepted:,}",
                    f"{f.rejected:,}",
                    f"{f.duplicates:,}",
                )
            )
        rows.append(
            ("total", "", "", f"{self.received:,}", f"{self.accepted:,}", f"{self.rejected:,}", f"{self.duplicates:,}")
        )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = []
        for k, r in enumerate(rows):
            cells = [r[i].ljust(widths[i]) if i < 3 else r[i].rjust(widths[i]) for i in range(len(r))]
            lines.append("  ".join(cells).rstrip())
            if k == 0 or k == len(rows) - 2:
                lines.append("  ".join("-" * w for w in widths))
        extras = [
            f"  {Path(f.source).name}: ignored columns {', '.join(f.unknown_columns)}"
            for f in self.files
            if f.unknown_columns
        ]
        tail = [f"run {self.run_id} -> {self.db} (tables: {self.table_name}, rejects, ingest_runs)"]
        return "\n".join(lines + extras + tail)


def _file(s: FileStats) -> FileReport:
    return FileReport(
        source=s.source,
        format=s.format,
        status=s.status,
        received=s.received,
        accepted=s.accepted,
        rejected=s.rejected,
        duplicates=s.duplicates,
        unknown_columns=s.unknown_columns,
        sha256=s.sha256,
        duration_s=s.duration_s,
    )
