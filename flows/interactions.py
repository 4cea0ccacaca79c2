"""The interactions flow: the server's spool → validated interactions in DuckDB (idempotent) + rejects in the
dead letter + the online recommender state (each user's latest items) snapshotted for the server.

    python -m bytewax.run "flows.interactions:build_flow('spool', db='tidegate.duckdb', state='state.json')"

or `tidegate interactions --spool DIR --db FILE [--state FILE] [--follow]`. The server never opens DuckDB:
it appends to the spool (`engine.serve.spool`) and this flow, the database's one writer, stores. One source
partition (the spool, resumed by segment and byte offset) and one sink partition (one DuckDB writer).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bytewax.operators as op
import msgspec
import polars as pl
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition
from bytewax.testing import run_main

from engine.errors import TidegateError
from engine.ingest.check import reject_frame
from engine.schema import INTERACTION
from engine.serve.recommend import RealtimeState
from engine.serve.spool import SpoolLine, line_decoder, segments
from engine.storage import Store
from engine.validation import Problem, validate_record

BATCH_LINES = 1000
SOURCE = "http:/v1/interactions"


@dataclass(frozen=True, slots=True)
class RawLines:
    segment: str
    end: int  # byte offset in the segment after these lines
    lines: list[bytes]


@dataclass
class Checked:
    """One micro-batch: typed rows to store, dead-letter rows, and (user, item) pairs for the online state."""

    rows: pl.DataFrame
    rejects: pl.DataFrame
    pairs: list[tuple[str, str]]
    received: int
    segment: str = ""
    end: int = 0


@dataclass
class FlowStats:
    received: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    users: int = 0
    segments: list[str] = field(default_factory=list)


class _SpoolPartition(StatefulSourcePartition[RawLines, dict[str, int]]):
    """Reads whole lines from the spool's segments in name order; state = {segment: bytes consumed}."""

    def __init__(self, folder: Path, done: dict[str, int], follow: bool, poll_s: float) -> None:
        self.folder, self.done, self.follow = folder, dict(done), follow
        self.poll = dt.timedelta(seconds=poll_s)
        self._awake: dt.datetime | None = None

    def next_batch(self) -> list[RawLines]:
        for seg in segments(self.folder):
            offset = self.done.get(seg.name, 0)
            if seg.stat().st_size <= offset:
                continue
            with seg.open("rb") as fh:
                fh.seek(offset)
                data = fh.read(BATCH_LINES * 512)
            end = data.rfind(b"\n")
            if end < 0:  # a line still being written
                continue
            self.done[seg.name] = offset + end + 1
            self._awake = None
            return [RawLines(seg.name, offset + end + 1, data[: end + 1].splitlines())]
        if not self.follow:
            raise StopIteration
        self._awake = dt.datetime.now(dt.UTC) + self.poll
        return []

    def next_awake(self) -> dt.datetime | None:
        return self._awake

    def snapshot(self) -> dict[str, int]:
        return dict(self.done)


class SpoolSource(FixedPartitionedSource[RawLines, dict[str, int]]):
    """The spool as one partition. Without Bytewax recovery it resumes from the positions in the state file
    (what the sink applied last), so a rerun reads only what is new."""

    def __init__(
        self, folder: Path, *, state_file: Path | None = None, follow: bool = False, poll_s: float = 0.2
    ) -> None:
        self.folder, self.state_file, self.follow, self.poll_s = Path(folder), state_file, follow, poll_s

    def list_parts(self) -> list[str]:
        return ["spool"]

    def build_part(self, step_id: str, for_part: str, resume_state: dict[str, int] | None) -> _SpoolPartition:
        if resume_state is None and self.state_file is not None and self.state_file.is_file():
            resume_state = RealtimeState.decode(self.state_file.read_bytes()).positions
        return _SpoolPartition(self.folder, resume_state or {}, self.follow, self.poll_s)


def check_lines(batch: RawLines) -> Checked:
    """Decode and re-validate spooled lines (the spool is a file: trust nothing); never raises."""
    ok: list[Any] = []
    pairs: list[tuple[str, str]] = []
    positions: list[str | None] = []
    raws: list[str | None] = []
    reasons: list[str] = []
    messages: list[str] = []
    received_at: list[dt.datetime] = []
    now = dt.datetime.now(dt.UTC)
    for no, raw in enumerate(batch.lines):
        try:
            line: SpoolLine = line_decoder.decode(raw)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            positions.append(f"{batch.segment} line-bytes {no}")
            raws.append(raw.decode("utf-8", "replace"))
            reasons.append("bad_spool_line")
            messages.append(f"not a spool line: {exc}")
            received_at.append(now)
            continue
        if line.kind == "ok":
            rec = validate_record(INTERACTION, line.record or {})
            if not isinstance(rec, Problem):
                ok.append(rec)
                pairs.append((rec.user_id, rec.item_id))  # type: ignore[attr-defined]
                continue
            line = msgspec.structs.replace(
                line, raw=msgspec.json.encode(line.record).decode(), reason=rec.reason, message=rec.message
            )
        positions.append(line.position)
        raws.append(line.raw)
        reasons.append(line.reason or "invalid")
        messages.append(line.message or "")
        received_at.append(line.received_at)
    rejects = reject_frame(SOURCE, positions, raws, reasons, messages, now, batch.segment, INTERACTION.name)
    if received_at:
        rejects = rejects.with_columns(pl.Series("received_at", received_at, dtype=pl.Datetime("us", "UTC")))
    rows = pl.DataFrame(
        {name: [getattr(r, name) for r in ok] for name in INTERACTION.names},
        schema={
            "user_id": pl.String,
            "item_id": pl.String,
            "event": pl.String,
            "ts": pl.Datetime("us", "UTC"),
            "value": pl.Float64,
        },
    )
    return Checked(rows, rejects, pairs, len(batch.lines), batch.segment, batch.end)


class _StorePartition(StatefulSinkPartition[Checked, bytes]):
    def __init__(
        self,
        db: Path,
        state_file: Path | None,
        resume: bytes | None,
        on_batch: Callable[[FlowStats], None] | None,
        per_user: int,
        max_users: int,
    ) -> None:
        self.store = Store(db)
        self.store.ensure(INTERACTION)
        self.state = RealtimeState(per_user, max_users)
        saved = resume or (state_file.read_bytes() if state_file is not None and state_file.is_file() else None)
        snap = RealtimeState.decode(saved) if saved else None
        if snap is not None:
            self.state.restore(snap)
        self.positions: dict[str, int] = dict(snap.positions) if snap is not None else {}
        self.state_file = state_file
        self.on_batch = on_batch

    def write_batch(self, values: list[Checked]) -> None:
        for c in values:
            new = self.store.insert_new(INTERACTION, c.rows)
            self.store.add_rejects(c.rejects)
            for user, item in c.pairs:
                self.state.add(user, item)
            if c.segment:
                self.positions[c.segment] = c.end
            if self.on_batch:
                accepted = c.rows.height
                self.on_batch(FlowStats(c.received, new, c.rejects.height, accepted - new, len(self.state)))

    def snapshot(self) -> bytes:
        data = self.state.to_json(self.positions)
        self._write_state(data)
        return data

    def _write_state(self, data: bytes | None = None) -> None:
        if self.state_file is None:
            return
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        tmp.write_bytes(data if data is not None else self.state.to_json(self.positions))
        os.replace(tmp, self.state_file)  # the server reads a whole snapshot or the previous one

    def close(self) -> None:
        self._write_state()
        self.store.close()


class StoreSink(FixedPartitionedSink[Checked, bytes]):
    """One partition: the database's one writer, and the one owner of the online state."""

    def __init__(self, db: Path, state_file: Path | None, on_batch: Any, per_user: int, max_users: int) -> None:
        self.db, self.state_file, self.on_batch = db, state_file, on_batch
        self.per_user, self.max_users = per_user, max_users

    def list_parts(self) -> list[str]:
        return ["db"]

    def build_part(self, step_id: str, for_part: str, resume_state: bytes | None) -> _StorePartition:
        return _StorePartition(self.db, self.state_file, resume_state, self.on_batch, self.per_user, self.max_users)


def build_flow(
    spool: str | Path,
    db: str | Path = "tidegate.duckdb",
    state: str | Path | None = None,
    *,
    follow: bool = False,
    on_batch: Callable[[FlowStats], None] | None = None,
    per_user: int = 50,
    max_users: int = 100_000,
) -> Dataflow:
    """The interactions dataflow: spool → check → DuckDB + dead letter + online state."""
    flow = Dataflow("interactions")
    state_file = Path(state) if state else None
    raw = op.input("spool", flow, SpoolSource(Path(spool), state_file=state_file, follow=follow))
    checked = op.map("check", raw, check_lines)
    keyed = op.key_on("to_db", checked, lambda _: "db")
    sink = StoreSink(Path(db), state_file, on_batch, per_user, max_users)
    op.output("store", keyed, sink)
    return flow


def run_interactions(spool: Path, db: Path, state: Path | None = None) -> FlowStats:
    """Run the flow over everything spooled so far (one worker, this process) and return the counts."""
    total = FlowStats(segments=[p.name for p in segments(Path(spool))])

    def add(s: FlowStats) -> None:
        total.received += s.received
        total.accepted += s.accepted
        total.rejected += s.rejected
        total.duplicates += s.duplicates
        total.users = s.users

    try:
        run_main(build_flow(spool, db, state, on_batch=add))
    except Exception as exc:
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, TidegateError):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        raise
    return total
