"""Online anomaly detection for sensor readings: per device, per measurement.

`ShardDetectors` runs the default detector (`ewz`) vectorised with numpy; the River detectors
(`EWZScore`, `DETECTORS`, `make_detector` from `models.anomaly.detectors`) load on first use, since River
imports scipy (tens of MB the default path does not need).
"""

from typing import Any

from models.anomaly.stream import DetectorConfig, ShardDetectors

__all__ = ["DETECTORS", "DetectorConfig", "EWZScore", "ShardDetectors", "make_detector"]


def __getattr__(name: str) -> Any:
    if name in {"DETECTORS", "EWZScore", "make_detector"}:
        from models.anomaly import detectors

        return getattr(detectors, name)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
