"""The MQTT source for Bytewax: QoS 1, persistent sessions, acknowledgements tied to recovery snapshots.

Each partition is one MQTT session (client id `<client_id>-<n>`); with several partitions they share one
subscription (`$share/...`), so the broker splits the devices between workers or processes.

When a message is acknowledged (the answer to "acks tied to safety"):
- With recovery (`recovery_dir` set): messages are grouped into segments, one per Bytewax epoch (a segment
  closes at each `snapshot()`). A segment is acknowledged only once a *committed* recovery snapshot of this
  partition covers it (`CommitProbe`), i.e. once every window, detector and sink effect of those messages is
  in the state Bytewax would resume from. A crash before that: the broker redelivers them to the
  resumed flow. Effects replayed after a resume are idempotent (readings keyed by device_id + ts, windows
  dedup the same key, aggregates and anomalies are upserts).
- Without recovery: a segment is acknowledged one epoch after it was emitted. Window state is not durable
  then, so a crash loses open windows; storage stays idempotent. Use recovery for no loss.
- After a reconnect, messages still unacknowledged from the old connection are not acknowledged (their
  packet ids may be reused): the broker redelivers them on the new connection, and the copies are
  acknowledged instead. The first copies are then duplicates, which the flow drops by natural key.

The receive maximum (65535 by default) bounds how many unacknowledged messages a partition holds, so
memory stays bounded while acks wait for a commit.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from engine.connectors.messages import MessageBatch
from engine.connectors.mqtt import MqttConfig, make_client
from engine.connectors.recovery_probe import CommitProbe

Listener = Callable[[str, str, int], None]  # (client id, event, value); events: connected, disconnected, acked


class MqttPartition(StatefulSourcePartition[MessageBatch, dict]):
    """One MQTT session. State: {'closed': number of segments closed so far}."""

    def __init__(
        self,
        cfg: MqttConfig,
        client_id: str,
        resume: dict | None,
        probe: CommitProbe | None,
        *,
        listener: Listener | None = None,
        probe_every_s: float = 0.2,
        stop_after_idle_s: float | None = None,
    ) -> None:
        self.cfg = cfg
        self.client_id = client_id
        self._probe = probe
        self._probe_every = probe_every_s
        self._next_probe = 0.0
        self._listener = listener
        self._closed = int((resume or {}).get("closed", 0))
        self._gen = 0  # connection generation
        self._inbox: deque[tuple[str, bytes, int, int]] = deque()
        self._current: list[tuple[int, int]] = []  # (gen, mid) emitted in the open segment
        self._pending: dict[int, list[tuple[int, int]]] = {}  # closed segment -> (gen, mid)
        self._awake: dt.datetime | None = None
        self._lock = threading.Lock()
        self._stop_after_idle = stop_after_idle_s
        self._last_message = time.monotonic()
        self.connects = 0
        self.acked = 0
        self.received = 0
        self._client, kwargs = make_client(cfg, client_id, manual_ack=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.connect_async(**kwargs)
        self._client.loop_start()

    # -- paho thread -------------------------------------------------------------------------------------
    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if rc.is_failure:
            return
        with self._lock:
            self._gen += 1
            self.connects += 1
        # Resubscribe on every connect: a broker that lost the session (no persistence) forgets it.
        client.subscribe(self.cfg.subscription(), qos=self.cfg.qos)
        self._emit("connected", self.connects)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self._emit("disconnected", 1)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        self._inbox.append((msg.topic, msg.payload, msg.mid, self._gen))

    def _emit(self, event: str, value: int) -> None:
        if self._listener is not None:
            self._listener(self.client_id, event, value)

    # -- Bytewax thread ----------------------------------------------------------------------------------
    def next_batch(self) -> list[MessageBatch]:
        if self._pending:
            self._maybe_ack()
        inbox = self._inbox
        n = min(len(inbox), self.cfg.max_batch)
        if n == 0:
            if self._stop_after_idle is not None:
                self._stop_if_idle()
            self._awake = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.cfg.idle_wait_s)
            return []
        self._awake = None
        self._last_message = time.monotonic()
        pop = inbox.popleft
        messages: list[tuple[str, bytes]] = []
        current = self._current
        for _ in range(n):
            topic, payload, mid, gen = pop()
            messages.append((topic, payload))
            current.append((gen, mid))
        self.received += n
        return [MessageBatch(self.client_id, messages, time.time())]

    def next_awake(self) -> dt.datetime | None:
        return self._awake

    def snapshot(self) -> dict:
        if self._current:
            self._pending[self._closed] = self._current
            self._current = []
        self._closed += 1
        if self._probe is None:
            self._ack_below(self._closed - 1)  # one epoch later (no recovery: see the module docstring)
        return {"closed": self._closed}

    def _maybe_ack(self) -> None:
        if self._probe is None:
            return
        now = time.monotonic()
        if now < self._next_probe:
            return
        self._next_probe = now + self._probe_every
        state = self._probe.committed()
        if isinstance(state, dict) and "closed" in state:
            self._ack_below(int(state["closed"]))

    def _ack_below(self, segment: int) -> None:
        done = [s for s in self._pending if s < segment]
        if not done:
            return
        gen = self._gen
        n = 0
        for s in sorted(done):
            for g, mid in self._pending.pop(s):
                if g == gen:
                    self._client.ack(mid, self.cfg.qos)
                    n += 1
        self.acked += n
        self._emit("acked", n)

    def _stop_if_idle(self) -> None:
        """End the partition after `stop_after_idle_s` without messages, once what it emitted is acked
        (with recovery: covered by a commit, waiting at most 30 s more for one)."""
        idle = time.monotonic() - self._last_message
        if idle <= self._stop_after_idle:  # type: ignore[operator]
            return
        if self._probe is None:
            if self._current:
                self._pending[self._closed] = self._current
                self._current = []
            self._ack_below(self._closed + 1)
        elif (self._pending or self._current) and idle < self._stop_after_idle + 30:  # type: ignore[operator]
            self._next_probe = 0.0
            return
        raise StopIteration

    @property
    def unacked(self) -> int:
        return len(self._current) + sum(len(v) for v in self._pending.values()) + len(self._inbox)

    def close(self) -> None:
        self._maybe_ack()
        self._client.disconnect()
        self._client.loop_stop()


class MqttSource(FixedPartitionedSource[MessageBatch, dict]):
    """`cfg.partitions` MQTT sessions; Bytewax spreads them over workers (and processes)."""

    def __init__(
        self,
        cfg: MqttConfig,
        recovery_dir: Path | None = None,
        *,
        listener: Listener | None = None,
        stop_after_idle_s: float | None = None,
    ) -> None:
        self.cfg = cfg
        self.recovery_dir = recovery_dir
        self.listener = listener
        self.stop_after_idle_s = stop_after_idle_s

    def list_parts(self) -> list[str]:
        return [f"{self.cfg.client_id}-{i}" for i in range(self.cfg.partitions)]

    def build_part(self, step_id: str, for_part: str, resume_state: dict | None) -> MqttPartition:
        probe = CommitProbe(self.recovery_dir, step_id, for_part) if self.recovery_dir is not None else None
        return MqttPartition(
            self.cfg, for_part, resume_state, probe, listener=self.listener, stop_after_idle_s=self.stop_after_idle_s
        )
