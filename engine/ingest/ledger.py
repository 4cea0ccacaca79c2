"""The storage end of ingestion: store what passed (idempotently), dead-letter what did not, and keep
per-file books so that received = accepted + rejected + duplicates when a file closes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict

from engine.ingest.check import Checked, reject_frame
from engine.ingest.files import FileEnd
from engine.schema.spec import Schema
from engine.storage.duckdb_store import FileStats, Store

Progress = Callable[[FileStats], None]


class Ledger:
    """Applies Checked batches and FileEnds to a Store. Its state survives a restart via `snapshot()`."""

    def __init__(
        self,
        store: Store,
        schema: Schema,
        run_id: str,
        state: dict[str, dict] | None = None,
        on_progress: Progress | None = None,
        on_file: Progress | None = None,
    ) -> None:
        self.store = store
        self.schema = schema
        self.run_id = run_id
        self.open: dict[str, FileStats] = {}
        self.expected: dict[str, FileEnd] = {}
        self.on_progress = on_progress
        self.on_file = on_file
        for source, s in (state or {}).get("open", {}).items():
            self.open[source] = FileStats(**s)
        store.ensure(schema)

    def _stats(self, source: str) -> FileStats:
        if source not in self.open:
            self.open[source] = FileStats(source=source, schema=self.schema.name, run_id=self.run_id)
        return self.open[source]

    def add(self, item: Checked | FileEnd) -> None:
        if isinstance(item, FileEnd):
            self._end(item)
        else:
            self._checked(item)
        self._maybe_close(item.source)

    def _checked(self, c: Checked) -> None:
        stats = self._stats(c.source)
        inserted = self.store.insert_new(self.schema, c.ok)
        self.store.add_rejects(c.rejects)
        stats.received += c.received
        stats.accepted += inserted
        stats.duplicates += c.ok.height - inserted
        stats.rejected += c.rejects.height
        for col in c.unknown_columns:
            if col not in stats.unknown_columns:
                stats.unknown_columns.append(col)
        if self.on_progress:
            self.on_progress(stats)

    def _end(self, end: FileEnd) -> None:
        stats = self._stats(end.source)
        stats.sha256, stats.format, stats.status = end.sha256, end.format, end.status
        stats.started_at, stats.finished_at = end.started_at, end.finished_at
        if end.error_reason is not None:
            self.store.add_rejects(
                reject_frame(
                    end.source,
                    [None],
                    [None],
                    [end.error_reason],
                    [end.error_message or ""],
                    end.finished_at,
                    self.run_id,
                    self.schema.name,
                )
            )
            stats.received += 1
            stats.rejected += 1
        self.expected[end.source] = end

    def _maybe_close(self, source: str) -> None:
        end = self.expected.get(source)
        stats = self.open.get(source)
        if end is None or stats is None or stats.received < end.received:
            return
        self.store.record_file(stats)
        del self.open[source], self.expected[source]
        if self.on_file:
            self.on_file(stats)

    def snapshot(self) -> dict[str, dict]:
        return {"open": {k: asdict(v) for k, v in self.open.items()}}

    def close(self) -> None:
        """Files whose end never arrived (a crash before the flow finished) are recorded as 'partial'."""
        for source in list(self.open):
            stats = self.open[source]
            if source not in self.expected:
                stats.status = "partial"
                stats.finished_at = stats.finished_at or dt.datetime.now(dt.UTC)
                self.store.record_file(stats)
        self.open.clear()
