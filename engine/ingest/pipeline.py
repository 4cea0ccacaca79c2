"""Overlap I/O with compute on a small box: read ahead in one thread, write behind in another.

pyarrow's reader, Polars and DuckDB release the GIL while they work, so on two cores reading batch k+1
and storing batch k-1 overlap with validating batch k. Both helpers keep order, bound their queues (so
memory stays flat), and re-raise a worker's exception in the caller's thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Iterate `items` in a background thread, at most `depth` items ahead of the consumer."""
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def fill() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, re-raised there
            q.put(_Failure(exc))

    thread = threading.Thread(target=fill, name="tidegate-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            got = q.get()
            if got is _DONE:
                return
            if isinstance(got, _Failure):
                raise got.exc
            yield got  # type: ignore[misc]
    finally:
        stop.set()


class WriteBehind(Generic[T]):
    """Apply `fn` to submitted items, in order, in one background thread. `flush()` waits for all of them."""

    def __init__(self, fn: Callable[[T], None], depth: int = 2) -> None:
        self._fn = fn
        self._q: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="tidegate-write-behind", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            item = self._q.get()
            try:
                if item is _DONE:
                    return
                if self._error is None:
                    self._fn(item)  # type: ignore[arg-type]
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                self._error = exc
            finally:
                self._q.task_done()

    def _raise(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def submit(self, item: T) -> None:
        self._raise()
        self._q.put(item)

    def flush(self) -> None:
        self._q.join()
        self._raise()

    def close(self) -> None:
        self._q.put(_DONE)
        self._thread.join()
        self._raise()
