"""Online anomaly detection for sensor readings (River): per device, per measurement."""

from models.anomaly.detectors import DETECTORS, EWZScore, make_detector
from models.anomaly.stream import DetectorConfig, ShardDetectors

__all__ = ["DETECTORS", "DetectorConfig", "EWZScore", "ShardDetectors", "make_detector"]
