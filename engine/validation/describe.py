"""Reject messages in words: one function per rule, shared by both validators."""

from __future__ import annotations

from engine.schema.spec import FieldSpec, Schema
from engine.validation import rules

_MAX_SHOWN = 60


def _show(raw: str | None) -> str:
    if raw is None:
        return "nothing"
    text = raw if len(raw) <= _MAX_SHOWN else raw[: _MAX_SHOWN - 1] + "…"
    return repr(text)


def describe(spec: FieldSpec, code: str, raw: str | None) -> str:
    """'temperature_c: 130.5 is outside [-40, 125]' and the like."""
    if code == rules.MISSING_FIELD:
        return f"{spec.name} is missing"
    if code == rules.BAD_TYPE:
        kind = "a timestamp" if spec.kind == "timestamp" else "a finite number"
        return f"{spec.name}: {_show(raw)} is not {kind}"
    if code == rules.OUT_OF_RANGE:
        return f"{spec.name}: {_show(raw)} is outside the allowed range ({spec.rule_text()})"
    if code == rules.INVALID_VALUE:
        return f"{spec.name}: {_show(raw)} must be {spec.rule_text()}"
    if code == rules.INVALID_CHOICE:
        return f"{spec.name}: {_show(raw)} is not {spec.rule_text()}"
    return f"{spec.name}: {_show(raw)} failed {code}"


def no_measurement(schema: Schema) -> str:
    return "none of " + ", ".join(schema.at_least_one) + " is present (at least one is required)"
