"""`tidegate schemas`: the declared record schemas, their rules and aliases."""

from __future__ import annotations

import argparse
from typing import Any

import msgspec


def register(sub: Any) -> None:
    p = sub.add_parser(
        "schemas",
        help="list record schemas and their rules",
        description="Show every declared record schema: fields, rules, aliases, key.",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.schema import SCHEMAS
    from engine.validation.rules import REASONS

    if args.json:
        out = {
            name: {
                "table": s.table,
                "key": list(s.key),
                "aliases": dict(s.aliases),
                "at_least_one": list(s.at_least_one),
                "fields": [{"name": f.name, "required": f.required, "rule": f.rule_text()} for f in s.fields],
            }
            for name, s in SCHEMAS.items()
        }
        print(msgspec.json.encode({"schemas": out, "reasons": REASONS}).decode())
        return 0
    for s in SCHEMAS.values():
        print(f"{s.name}  (table {s.table}, key {', '.join(s.key)})")
        for f in s.fields:
            print(f"  {f.name:15s} {'required' if f.required else 'optional':9s} {f.rule_text()}")
        if s.at_least_one:
            print(f"  at least one of: {', '.join(s.at_least_one)}")
        print("  aliases: " + ", ".join(f"{a}->{c}" for a, c in s.aliases.items()))
        print()
    print("reject reasons:")
    for code, text in REASONS.items():
        print(f"  {code:16s} {text}")
    return 0
