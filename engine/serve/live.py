"""The dashboard's live state, fed over MQTT: the IoT flow publishes closed windows and anomalies on a
live topic (DuckDB has one writer, so the server never reads the flow's database).

A paho client (clean session: only live data matters) fills a bounded board: the latest window per
device (at most `max_devices`, least recently updated dropped) and the last `max_anomalies` anomalies.
Each update is also pushed to every listening SSE stream through its own bounded asyncio queue (a slow
browser loses old updates, never blocks the feed).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict, deque
from typing import Any

import msgspec
import paho.mqtt.client as paho

from engine.connectors.mqtt import MqttConfig, make_client


class LiveConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    live_topic: str = "tidegate/live"
    client_id: str = "tidegate-dashboard"
    max_devices: int = 10_000
    max_anomalies: int = 200
    queue_size: int = 256


class LiveBoard:
    def __init__(self, cfg: LiveConfig) -> None:
        self.cfg = cfg
        self.devices: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.anomalies: deque[dict[str, Any]] = deque(maxlen=cfg.max_anomalies)
        self.updates = 0
        self.connected = False
        self._lock = threading.Lock()
        self._listeners: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[list[dict[str, Any]]]]] = set()
        self._decode = msgspec.json.Decoder(list[dict[str, Any]]).decode
        self._client: paho.Client | None = None

    # -- feed -------------------------------------------------------------------------------------------
    def start(self) -> None:
        client, kwargs = make_client(MqttConfig(url=self.cfg.mqtt_url), f"{self.cfg.client_id}-{time.time_ns()}")
        kwargs["clean_start"] = True
        kwargs["properties"] = None
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.connect_async(**kwargs)
        client.loop_start()
        self._client = client

    def stop(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if not rc.is_failure:
            self.connected = True
            client.subscribe(self.cfg.live_topic, qos=0)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connected = False

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        try:
            items = self._decode(msg.payload)
        except (msgspec.DecodeError, UnicodeDecodeError):
            return  # not ours: the live topic carries JSON arrays only
        self.apply(items)

    def apply(self, items: list[dict[str, Any]]) -> None:
        with self._lock:
            for it in items:
                if it.get("kind") == "window" and isinstance(it.get("device_id"), str):
                    self.devices[it["device_id"]] = it
                    self.devices.move_to_end(it["device_id"])
                    while len(self.devices) > self.cfg.max_devices:
                        self.devices.popitem(last=False)
                elif it.get("kind") == "anomaly":
                    self.anomalies.append(it)
            self.updates += 1
            listeners = list(self._listeners)
        for loop, q in listeners:
            loop.call_soon_threadsafe(_offer, q, items)

    # -- readers ----------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "devices": list(self.devices.values()),
                "anomalies": list(self.anomalies),
                "updates": self.updates,
                "connected": self.connected,
            }

    def listen(self) -> asyncio.Queue[list[dict[str, Any]]]:
        q: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue(self.cfg.queue_size)
        with self._lock:
            self._listeners.add((asyncio.get_running_loop(), q))
        return q

    def unlisten(self, q: asyncio.Queue[list[dict[str, Any]]]) -> None:
        with self._lock:
            self._listeners = {(lp, x) for lp, x in self._listeners if x is not q}


def _offer(q: asyncio.Queue[list[dict[str, Any]]], items: list[dict[str, Any]]) -> None:
    if q.full():
        q.get_nowait()  # drop the oldest update for a slow reader
    q.put_nowait(items)
