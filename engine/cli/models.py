"""`tidegate models list|show|promote|rollback`: the model registry from the command line."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from engine.errors import UsageError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "models",
        help="list, show, promote and roll back registered models",
        description="The model registry: versions with manifests and an append-only history of the live version.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    actions.required = True
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--registry", type=Path, default=None, metavar="DIR", help="default $TIDEGATE_REGISTRY, else ./registry"
    )
    common.add_argument("--json", action="store_true", help="machine-readable output")
    a = actions.add_parser("list", parents=[common], help="every model: live and latest version, task, metric")
    a.set_defaults(run=run_list)
    a = actions.add_parser("show", parents=[common], help="a version's manifest and the live history")
    a.add_argument("ref", metavar="NAME[@VERSION]", help="model name, optionally @version (default: the live one)")
    a.set_defaults(run=run_show)
    a = actions.add_parser("promote", parents=[common], help="make a version live")
    a.add_argument("name")
    a.add_argument("version", type=int)
    a.set_defaults(run=run_promote)
    a = actions.add_parser("rollback", parents=[common], help="make the previously live version live again")
    a.add_argument("name")
    a.set_defaults(run=run_rollback)


def _registry(args: argparse.Namespace) -> Any:
    from engine.registry import Registry, default_registry_path

    return Registry(args.registry or default_registry_path())


def _emit(obj: object) -> None:
    import msgspec

    sys.stdout.write(msgspec.json.encode(obj).decode() + "\n")


def run_list(args: argparse.Namespace) -> int:
    reg = _registry(args)
    rows = []
    for name in reg.names():
        live, versions = reg.live(name), reg.versions(name)
        man = reg.manifest(name, live or versions[-1])
        headline = ("test_roc_auc", "test_rmse", "progressive_roc_auc", "progressive_rmse")
        metric = next(((k, man.metrics[k]) for k in headline if k in man.metrics), None)
        rows.append(
            {
                "name": name,
                "live": live,
                "latest": versions[-1],
                "versions": len(versions),
                "kind": man.kind,
                "task": man.task,
                "family": man.family,
                "metric": f"{metric[0]} {metric[1]:.4f}" if metric else "",
                "created_at": man.created_at.isoformat(timespec="seconds"),
            }
        )
    if args.json:
        _emit(rows)
        return 0
    if not rows:
        print(f"no models in {reg.root}")
        return 0
    print(f"{'name':24s} {'live':>4s} {'latest':>6s} {'kind':5s} {'task':14s} {'family':12s} {'metric':22s} created")
    for r in rows:
        live = "-" if r["live"] is None else str(r["live"])
        print(
            f"{r['name']:24s} {live:>4s} {r['latest']:>6d} {r['kind']:5s} {r['task']:14s} {r['family']:12s} "
            f"{r['metric']:22s} {r['created_at']}"
        )
    return 0


def run_show(args: argparse.Namespace) -> int:
    from engine.registry import RegistryError

    reg = _registry(args)
    name, _, ver = args.ref.partition("@")
    if ver and not ver.isdigit():
        msg = f"bad reference {args.ref!r}: use NAME or NAME@VERSION with a number, e.g. churn@2"
        raise UsageError(msg)
    man = reg.manifest(name, int(ver) if ver else None)
    try:
        reg.artifact(name, man.version)
        integrity = "sha256 ok"
    except RegistryError as exc:
        integrity = f"FAILED: {exc}"
    history = reg.history(name)
    if args.json:
        _emit({"manifest": man, "live": reg.live(name), "integrity": integrity, "history": history})
        return 0 if integrity == "sha256 ok" else 1
    live = reg.live(name)
    print(f"{man.name} version {man.version} ({'live' if live == man.version else f'live is {live}'})")
    print(f"  kind {man.kind}, task {man.task}, family {man.family}, target {man.target}")
    if man.labels:
        print(f"  labels {', '.join(man.labels)}" + (f"; threshold {man.threshold:.4f}" if man.threshold else ""))
    print(f"  artifact {man.artifact} {man.size_bytes:,} bytes, sha256 {man.sha256[:16]}… ({integrity})")
    print(f"  created {man.created_at.isoformat(timespec='seconds')}, parent {man.parent}")
    if man.data:
        print(f"  data {man.data.source} ({man.data.rows:,} rows, fingerprint {man.data.fingerprint[:16]}…)")
    print("  inputs " + ", ".join(f"{i.column or i.name}:{i.dtype}" for i in man.inputs))
    print("  metrics " + ", ".join(f"{k} {v:.4f}" for k, v in man.metrics.items()))
    print("  history")
    for e in history:
        print(f"    {e.at.isoformat(timespec='seconds')}  {e.action:8s} -> {e.version} (was {e.previous})")
    return 0 if integrity == "sha256 ok" else 1


def run_promote(args: argparse.Namespace) -> int:
    entry = _registry(args).promote(args.name, args.version, dt.datetime.now(dt.UTC))
    _done(args, entry)
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    entry = _registry(args).rollback(args.name, dt.datetime.now(dt.UTC))
    _done(args, entry)
    return 0


def _done(args: argparse.Namespace, entry: Any) -> None:
    if args.json:
        _emit(entry)
    else:
        print(f"{args.name}: version {entry.version} is live (was {entry.previous})")
