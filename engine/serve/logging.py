"""Structured logs: one JSON object per line on stderr (`ts`, `level`, `event`, then the event's fields).

log = get_logger()
emit(log, "model_loaded", model="churn", version=3, load_ms=4.1)
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from typing import Any

import msgspec

LOGGER = "tidegate.serve"
_encoder = msgspec.json.Encoder()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
        }
        doc.update(getattr(record, "fields", {}))
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        return _encoder.encode(doc).decode()


def configure_logging(level: str = "info", stream: Any = None) -> logging.Logger:
    """The server's logger with one JSON handler (idempotent: a second call replaces the handler)."""
    log = logging.getLogger(LOGGER)
    for h in list(log.handlers):
        log.removeHandler(h)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    log.addHandler(handler)
    log.setLevel(level.upper())
    log.propagate = False
    return log


def get_logger() -> logging.Logger:
    return logging.getLogger(LOGGER)


def emit(log: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log `event` with structured `fields` (skipped cheaply when the level is off)."""
    if log.isEnabledFor(level):
        log.log(level, event, extra={"fields": fields})
