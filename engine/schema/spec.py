"""Declarative record schemas: a msgspec Struct is the one declaration; rules are read off its annotations.

A schema is declared once (`declare(Struct, ...)`) and every executor reads the same `FieldSpec`s: the
vectorised validator for files and micro-batches (`engine.validation.frame`) and the per-record validator
for MQTT/HTTP messages (`engine.validation.record`). A parity test holds the two together.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
import msgspec.inspect as mi

from engine.errors import SchemaError

FieldKind = Literal["string", "choice", "float", "timestamp"]


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field's rules, as read from the Struct's annotations."""

    name: str
    kind: FieldKind
    required: bool
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    ge: float | None = None
    le: float | None = None
    choices: tuple[str, ...] = ()
    since: dt.datetime | None = None  # inclusive, UTC
    before: dt.datetime | None = None  # exclusive, UTC
    description: str = ""

    @property
    def compiled(self) -> re.Pattern[str] | None:
        return re.compile(self.pattern) if self.pattern else None

    def rule_text(self) -> str:
        """The rule in words, for `tidegate schemas` and reject messages."""
        if self.kind == "string":
            return f"{self.min_length}–{self.max_length} characters matching {self.pattern}"
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "float":
            if self.ge is None and self.le is None:
                return "a finite number"
            return f"a number in [{_num(self.ge)}, {_num(self.le)}]"
        assert self.since is not None and self.before is not None
        return (
            "ISO-8601 (naive = UTC), epoch seconds, or epoch milliseconds (integer ≥ 1e11), "
            f"in [{self.since:%Y-%m-%d}, {self.before:%Y-%m-%d}) UTC"
        )


def _num(value: float | None) -> str:
    if value is None:
        return "∞"
    return f"{value:g}"


@dataclass(frozen=True)
class Schema:
    """A record type plus everything needed to find, cleanse and store it."""

    name: str
    version: int
    record_type: type[msgspec.Struct]
    fields: tuple[FieldSpec, ...]
    key: tuple[str, ...]
    table: str
    aliases: Mapping[str, str] = field(default_factory=dict)
    at_least_one: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def spec(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        msg = f"schema {self.name!r} has no field {name!r}"
        raise SchemaError(msg)

    def candidates(self, name: str) -> tuple[str, ...]:
        """Cleaned column names that can carry field `name`, by priority: the field's own name, then its
        aliases in declaration order. The first one with a value wins (in both validators)."""
        return self._candidates[name]

    @functools.cached_property
    def field_candidates(self) -> tuple[tuple[FieldSpec, tuple[str, ...]], ...]:
        """Every field with its `candidates`, in field order (computed once per schema)."""
        return tuple((f, self.candidates(f.name)) for f in self.fields)

    @functools.cached_property
    def alias_names(self) -> frozenset[str]:
        """Every alias (a cleaned column name that stands for a field other than by its own name)."""
        return frozenset(self.aliases)

    @functools.cached_property
    def _candidates(self) -> dict[str, tuple[str, ...]]:
        # Computed once per schema: the per-record validator asks for every field of every record.
        return {
            f.name: (f.name, *(alias for alias, target in self.aliases.items() if target == f.name))
            for f in self.fields
        }

    def canonical(self, cleaned_name: str) -> str | None:
        """The schema field a cleaned column name stands for, or None when it is an extra column."""
        if cleaned_name in self.names:
            return cleaned_name
        return self.aliases.get(cleaned_name)


def declare(
    record_type: type[msgspec.Struct],
    *,
    name: str,
    table: str,
    key: tuple[str, ...],
    version: int = 1,
    aliases: Mapping[str, str] | None = None,
    at_least_one: tuple[str, ...] = (),
) -> Schema:
    """Build a Schema from a Struct whose fields carry msgspec `Meta` constraints."""
    info = mi.type_info(record_type)
    assert isinstance(info, mi.StructType)
    specs = tuple(_field_spec(f) for f in info.fields)
    names = {s.name for s in specs}
    for col in (*key, *at_least_one, *(aliases or {}).values()):
        if col not in names:
            msg = f"schema {name!r}: {col!r} is named in key/aliases/at_least_one but is not a field"
            raise SchemaError(msg)
    return Schema(
        name=name,
        version=version,
        record_type=record_type,
        fields=specs,
        key=key,
        table=table,
        aliases=dict(aliases or {}),
        at_least_one=at_least_one,
    )


def _field_spec(f: mi.Field) -> FieldSpec:
    t: Any = f.type
    if isinstance(t, mi.UnionType):
        non_null = [x for x in t.types if not isinstance(x, mi.NoneType)]
        if len(non_null) != 1:
            msg = f"field {f.name!r}: only `T | None` unions are supported"
            raise SchemaError(msg)
        t = non_null[0]
    extra: dict[str, Any] = {}
    if isinstance(t, mi.Metadata):
        extra = dict(t.extra or {})
        t = t.type
    desc = str(extra.get("description", ""))
    if isinstance(t, mi.StrType):
        return FieldSpec(
            f.name,
            "string",
            f.required,
            min_length=t.min_length or 0,
            max_length=t.max_length,
            pattern=t.pattern,
            description=desc,
        )
    if isinstance(t, mi.LiteralType):
        return FieldSpec(f.name, "choice", f.required, choices=tuple(str(v) for v in t.values), description=desc)
    if isinstance(t, mi.FloatType):
        return FieldSpec(f.name, "float", f.required, ge=t.ge, le=t.le, description=desc)
    if isinstance(t, mi.DateTimeType):
        since = dt.datetime.fromisoformat(extra.get("since", "1970-01-01T00:00:00+00:00"))
        before = dt.datetime.fromisoformat(extra.get("before", "2100-01-01T00:00:00+00:00"))
        return FieldSpec(f.name, "timestamp", f.required, since=since, before=before, description=desc)
    msg = f"field {f.name!r}: type {t!r} is not supported in a record schema"
    raise SchemaError(msg)
