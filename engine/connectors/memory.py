"""An in-memory source of pre-encoded messages: the benchmark's input and the demo's fallback when no
broker is installed. Resumable by batch index, so it also runs under recovery in tests."""

from __future__ import annotations

import time
from collections.abc import Sequence

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from engine.connectors.messages import MessageBatch


class _MemoryPartition(StatefulSourcePartition[MessageBatch, int]):
    def __init__(self, batches: Sequence[list[tuple[str, bytes]]], start: int, name: str) -> None:
        self._batches = batches
        self._next = start
        self._name = name

    def next_batch(self) -> list[MessageBatch]:
        if self._next >= len(self._batches):
            raise StopIteration
        batch = self._batches[self._next]
        self._next += 1
        return [MessageBatch(self._name, batch, time.time())]

    def snapshot(self) -> int:
        return self._next


class MemorySource(FixedPartitionedSource[MessageBatch, int]):
    """Messages as `(topic, payload)` lists, one list per item; the source ends after the last."""

    def __init__(self, batches: Sequence[list[tuple[str, bytes]]], name: str = "memory") -> None:
        self.batches = batches
        self.name = name

    def list_parts(self) -> list[str]:
        return [self.name]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _MemoryPartition:
        return _MemoryPartition(self.batches, resume_state or 0, self.name)


def batched(messages: Sequence[tuple[str, bytes]], size: int) -> list[list[tuple[str, bytes]]]:
    return [list(messages[i : i + size]) for i in range(0, len(messages), size)]
