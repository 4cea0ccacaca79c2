"""Record schemas: `SensorReading`, `Interaction` and the rules read off them."""

from engine.errors import SchemaError
from engine.schema.records import INTERACTION, SENSOR_READING, Interaction, SensorReading
from engine.schema.spec import FieldSpec, Schema, declare

SCHEMAS: dict[str, Schema] = {s.name: s for s in (SENSOR_READING, INTERACTION)}


def get_schema(name: str) -> Schema:
    """The schema called `name`, or a SchemaError listing the known ones."""
    try:
        return SCHEMAS[name]
    except KeyError:
        known = ", ".join(sorted(SCHEMAS))
        msg = f"unknown schema {name!r}: choose one of {known}"
        raise SchemaError(msg) from None


__all__ = [
    "INTERACTION",
    "SCHEMAS",
    "SENSOR_READING",
    "FieldSpec",
    "Interaction",
    "Schema",
    "SchemaError",
    "SensorReading",
    "declare",
    "get_schema",
]
