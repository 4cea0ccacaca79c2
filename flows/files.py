"""The files flow: files as partitions of a resumable source -> detect/read in batches -> cleanse and
validate -> passed rows to the schema's table (idempotent), rejects to the dead letter, per-file books.

    python -m bytewax.run "flows.files:build_flow(['data/'], db='tidegate.duckdb')"

or `tidegate ingest PATH... --db FILE`. One DuckDB writer: the sink has a single partition.
"""

from __future__ import annotations

import shutil
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import run_main

from engine.errors import TidegateError, UsageError
from engine.ingest import Checked, FileChunk, FileEnd, Ledger, check_batch, discover, read_file
from engine.ingest.files import utc_now
from engine.ingest.pipeline import WriteBehind, prefetch
from engine.ingest.report import RunReport
from engine.io.readers import DEFAULT_BATCH_ROWS
from engine.schema import Schema, get_schema
from engine.storage import Store

Item = FileChunk | FileEnd


class _FilePartition(StatefulSourcePartition[Item, int]):
    """One file; the snapshot is the number of chunks already emitted."""

    def __init__(self, path: Path, batch_rows: int, done: int) -> None:
        self._done = done
        self._items = prefetch(read_file(path, batch_rows=batch_rows, skip=done))

    def next_batch(self) -> list[Item]:
        item = next(self._items)  # StopIteration ends the partition
        if isinstance(item, FileChunk):
            self._done = item.seq + 1
        return [item]

    def snapshot(self) -> int:
        return self._done


class FilesSource(FixedPartitionedSource[Item, int]):
    """Every file is a partition: Bytewax spreads them over workers and resumes each one by chunk count."""

    def __init__(self, paths: list[Path], batch_rows: int = DEFAULT_BATCH_ROWS) -> None:
        self.paths = {str(p): p for p in paths}
        self.batch_rows = batch_rows

    def list_parts(self) -> list[str]:
        return list(self.paths)

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _FilePartition:
        return _FilePartition(self.paths[for_part], self.batch_rows, resume_state or 0)


class _LedgerPartition(StatefulSinkPartition[Checked | FileEnd, dict]):
    """Stores write-behind (DuckDB works while the next batch is validated); a snapshot waits for them."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.writer: WriteBehind[Checked | FileEnd] = WriteBehind(ledger.add)

    def write_batch(self, values: list[Checked | FileEnd]) -> None:
        for v in values:
            self.writer.submit(v)

    def snapshot(self) -> dict:
        self.writer.flush()
        return self.ledger.snapshot()

    def close(self) -> None:
        self.writer.close()
        self.ledger.close()
        self.ledger.store.close()


class LedgerSink(FixedPartitionedSink[Checked | FileEnd, dict]):
    """One partition, so exactly one process writes the DuckDB file."""

    def __init__(self, db: Path, schema: Schema, run_id: str, **hooks: Any) -> None:
        self.db, self.schema, self.run_id, self.hooks = db, schema, run_id, hooks

    def list_parts(self) -> list[str]:
        return ["db"]

    def build_part(self, step_id: str, for_part: str, resume_state: dict | None) -> _LedgerPartition:
        return _LedgerPartition(Ledger(Store(self.db), self.schema, self.run_id, resume_state, **self.hooks))


def _check(schema: Schema, run_id: str, item: Item) -> Checked | FileEnd:
    if isinstance(item, FileEnd):
        return item
    return check_batch(
        schema,
        item.batch,
        source=item.source,
        run_id=run_id,
        received_at=utc_now(),
        decimal_comma=item.decimal_comma,
    )


def build_flow(
    paths: list[str | Path],
    db: str | Path = "tidegate.duckdb",
    schema: str = "sensor_reading",
    run_id: str | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    **hooks: Any,
) -> Dataflow:
    """The files dataflow over `paths` (files or folders). `hooks`: on_progress / on_file callbacks."""
    spec = get_schema(schema)
    files = discover([Path(p) for p in paths])
    run = run_id or uuid.uuid4().hex[:12]
    flow = Dataflow("files")
    raw = op.input("read", flow, FilesSource(files, batch_rows))
    checked = op.map("check", raw, lambda item: _check(spec, run, item))
    keyed = op.key_on("to_db", checked, lambda _: "db")
    op.output("store", keyed, LedgerSink(Path(db), spec, run, **hooks))
    return flow


def ingest_paths(
    paths: list[Path],
    db: Path,
    schema: str = "sensor_reading",
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    run_id: str | None = None,
    on_progress: Any = None,
    recovery_dir: Path | None = None,
    snapshot_every: timedelta = timedelta(seconds=2),
) -> RunReport:
    """Run the files flow to the end in this process (one worker) and report what it did.

    With `recovery_dir`, Bytewax snapshots every `snapshot_every`; if the process dies, the same call with
    the same folder resumes the same run (its id is kept there) from the last snapshot: sinks are
    idempotent, so nothing is stored twice. A finished run clears the folder."""
    get_schema(schema)  # a usage error before any work
    if batch_rows < 1:
        msg = f"--batch-rows must be at least 1, got {batch_rows}"
        raise UsageError(msg)
    hooks = {"on_progress": on_progress} if on_progress else {}
    recovery = None
    if recovery_dir is not None:
        run_id, recovery = _recovery(recovery_dir, run_id)
    run = run_id or uuid.uuid4().hex[:12]
    flow = build_flow(list(paths), db=db, schema=schema, run_id=run, batch_rows=batch_rows, **hooks)
    with Store(db) as store:  # fail fast, with a clear message, when the database cannot be written
        store.ensure(get_schema(schema))
    try:
        run_main(flow, epoch_interval=snapshot_every, recovery_config=recovery)
    except Exception as exc:
        # Bytewax wraps an operator's exception in its own; surface ours with its actionable message.
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, TidegateError):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        raise
    if on_progress:
        sys.stderr.write("\n")
    if recovery_dir is not None:
        shutil.rmtree(recovery_dir)
    return RunReport.from_store(db, run, schema)


def _recovery(folder: Path, run_id: str | None) -> tuple[str, RecoveryConfig]:
    """Resume the run recorded in `folder`, or start one there."""
    marker = folder / "run_id"
    if marker.exists():
        return marker.read_text().strip(), RecoveryConfig(str(folder))
    folder.mkdir(parents=True, exist_ok=True)
    run = run_id or uuid.uuid4().hex[:12]
    init_db_dir(folder, 1)
    marker.write_text(run)
    return run, RecoveryConfig(str(folder))
