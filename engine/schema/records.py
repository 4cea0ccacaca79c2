"""The record types every source decodes into, and their schemas: declared here, once."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

from engine.schema.spec import declare

SINCE = "2000-01-01T00:00:00+00:00"
BEFORE = "2030-01-01T00:00:00+00:00"

EventTime = Annotated[dt.datetime, msgspec.Meta(tz=True, extra={"since": SINCE, "before": BEFORE})]
DeviceId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
EntityId = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")]


class SensorReading(msgspec.Struct, frozen=True, kw_only=True):
    """One reading from one IoT device at one instant (UTC)."""

    device_id: DeviceId
    ts: EventTime
    temperature_c: Annotated[float, msgspec.Meta(ge=-40, le=125)] | None = None
    humidity_pct: Annotated[float, msgspec.Meta(ge=0, le=100)] | None = None
    pressure_hpa: Annotated[float, msgspec.Meta(ge=300, le=1100)] | None = None
    vibration_g: Annotated[float, msgspec.Meta(ge=0, le=16)] | None = None


class Interaction(msgspec.Struct, frozen=True, kw_only=True):
    """One user's interaction with one catalogue item."""

    user_id: EntityId
    item_id: EntityId
    event: Literal["view", "click", "cart", "purchase", "rating"]
    ts: EventTime
    value: float | None = None


_ID_ALIASES = {"device": "device_id", "deviceid": "device_id", "sensor_id": "device_id"}
_TS_ALIASES = {"timestamp": "ts", "time": "ts", "datetime": "ts"}

SENSOR_READING = declare(
    SensorReading,
    name="sensor_reading",
    table="readings",
    key=("device_id", "ts"),
    aliases={
        **_ID_ALIASES,
        **_TS_ALIASES,
        "temp": "temperature_c",
        "temperature": "temperature_c",
        "humidity": "humidity_pct",
        "rh": "humidity_pct",
        "pressure": "pressure_hpa",
        "vibration": "vibration_g",
    },
    at_least_one=("temperature_c", "humidity_pct", "pressure_hpa", "vibration_g"),
)

INTERACTION = declare(
    Interaction,
    name="interaction",
    table="interactions",
    key=("user_id", "item_id", "event", "ts"),
    aliases={
        **_TS_ALIASES,
        "user": "user_id",
        "userid": "user_id",
        "item": "item_id",
        "itemid": "item_id",
        "event_type": "event",
        "action": "event",
        "rating": "value",
    },
)
