"""`tidegate train --data SRC --target COL --name NAME`: model selection, CV, report, ONNX export, registry."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from engine.errors import UsageError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train and validate a model on a table; export it to ONNX and register it",
        description="Infer column types, hold back a (stratified) test split, cross-validate LogisticRegression/"
        "Ridge, RandomForest and GradientBoosting (optionally tuned), pick the best by the CV mean, tune the "
        "decision threshold, export the whole pipeline as one ONNX graph checked against scikit-learn, register "
        "it, and write a JSON + HTML report.",
    )
    p.add_argument(
        "--data", required=True, metavar="SRC", help="CSV/JSON/NDJSON/Parquet file (gzip ok) or duckdb:FILE:TABLE|QUERY"
    )
    p.add_argument("--target", required=True, metavar="COL", help="the column to predict")
    p.add_argument("--name", required=True, help="model name in the registry")
    p.add_argument("--task", choices=("auto", "classification", "regression"), default="auto")
    p.add_argument(
        "--models", default="lr,rf,gb", help="families to compare: lr,rf,gb (hgb is gated) (default lr,rf,gb)"
    )
    p.add_argument("--folds", type=int, default=5, help="CV folds (default 5)")
    p.add_argument(
        "--tune",
        type=int,
        default=0,
        metavar="N",
        help="randomized-search candidates per family (default 0: defaults only)",
    )
    p.add_argument("--pca", default="off", help="off | auto (95%% variance) | K components (default off)")
    p.add_argument("--test-size", type=float, default=0.2, help="held-back share (default 0.2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--positive", default=None, metavar="LABEL", help="binary target: the positive class")
    p.add_argument("--online", action="store_true", help="also train the River online counterpart")
    p.add_argument("--jobs", type=int, default=1, help="parallel fits (joblib n_jobs; -1 = all cores; default 1)")
    p.add_argument(
        "--report", type=Path, default=None, metavar="DIR", help="report folder (default reports/NAME/vVERSION)"
    )
    p.add_argument(
        "--registry",
        type=Path,
        default=None,
        metavar="DIR",
        help="model registry (default $TIDEGATE_REGISTRY, else ./registry)",
    )
    p.add_argument("--no-promote", action="store_true", help="register without making the new version live")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import msgspec

    from engine.registry import Registry, default_registry_path
    from models.training.config import PcaOption, TrainConfig
    from models.training.families import parse_models
    from models.training.runner import train

    if args.jobs == 0:
        msg = "--jobs 0: use a positive number of parallel fits, or -1 for all cores"
        raise UsageError(msg)
    cfg = TrainConfig(
        data=args.data,
        target=args.target,
        name=args.name,
        task=args.task,
        models=parse_models(args.models),
        folds=args.folds,
        tune=args.tune,
        pca=PcaOption.parse(args.pca),
        test_size=args.test_size,
        seed=args.seed,
        positive=args.positive,
        online=args.online,
        jobs=args.jobs,
        report_dir=args.report,
    )
    registry = Registry(args.registry or default_registry_path())
    show = not args.json and sys.stderr.isatty()  # progress lines only for a person watching
    progress = (lambda line: print(f"  {line}", file=sys.stderr)) if show else None
    result = train(cfg, now=dt.datetime.now(dt.UTC), registry=registry, promote=not args.no_promote, log=progress)
    if args.json:
        sys.stdout.write(msgspec.json.encode(result.report).decode() + "\n")
        return 0
    from models.training.report import summary_table

    print(summary_table(result.report))
    print(f"report   {result.paths['html']} (and report.json)")
    return 0
