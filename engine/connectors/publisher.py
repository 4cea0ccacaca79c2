"""A QoS 1 publisher that survives broker restarts: paho queues while disconnected and resends unacked
messages on reconnect (persistent session). Used by the simulator, the alert sink and the live feed."""

from __future__ import annotations

import threading
import time
from collections import deque

import paho.mqtt.client as paho

from engine.connectors.mqtt import MqttConfig, make_client
from engine.errors import TidegateError


class Publisher:
    """Publish with QoS 1; `flush()` waits until the broker has acknowledged everything published.
    `connect_timeout_s=0`: do not wait for the first connection (messages queue until it is up)."""

    def __init__(self, cfg: MqttConfig, client_id: str, *, connect_timeout_s: float = 10.0) -> None:
        self.cfg = cfg
        self._client, kwargs = make_client(cfg, client_id)
        self._connected = threading.Event()
        self._infos: deque[paho.MQTTMessageInfo] = deque()
        self.connects = 0
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.connect_async(**kwargs)
        self._client.loop_start()
        if connect_timeout_s > 0 and not self._connected.wait(connect_timeout_s):
            self.close()
            host, port = cfg.host_port
            msg = f"cannot reach the MQTT broker at {host}:{port} within {connect_timeout_s:g}s (is it running?)"
            raise TidegateError(msg)

    def _on_connect(self, client: paho.Client, userdata: object, flags: object, rc: object, props: object) -> None:
        self.connects += 1
        self._connected.set()

    def _on_disconnect(self, client: paho.Client, userdata: object, flags: object, rc: object, props: object) -> None:
        self._connected.clear()

    def publish(self, topic: str, payload: bytes, qos: int | None = None) -> None:
        q = self.cfg.qos if qos is None else qos
        info = self._client.publish(topic, payload, qos=q)
        if q > 0:
            self._infos.append(info)
            while self._infos and _acked(self._infos[0]):
                self._infos.popleft()

    @property
    def pending(self) -> int:
        return sum(not _acked(i) for i in self._infos)

    def flush(self, timeout_s: float = 60.0) -> bool:
        """Wait until every QoS 1 message published so far is acknowledged; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self._infos:
            if _acked(self._infos[0]):
                self._infos.popleft()
                continue
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def _acked(info: paho.MQTTMessageInfo) -> bool:
    """Whether the broker acknowledged the message. paho's `is_published()` raises for a message published
    while disconnected (rc NO_CONN) even though paho queued it and sends it after the reconnect; the flag
    it guards is set on PUBACK either way, so read it directly."""
    with info._condition:  # paho has no public accessor for a queued message's state
        return bool(info._published)
