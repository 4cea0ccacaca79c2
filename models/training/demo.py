"""The training part of `tidegate demo`: a churn model on a generated customer table, end to end.

from models.training.demo import demo_train
demo_train(Path(".demo"), Registry(Path(".demo/registry")), now=dt.datetime.now(dt.UTC))
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from engine.registry import Registry
from engine.samples.churn import write_churn_csv
from models.training.config import TrainConfig
from models.training.report import summary_table
from models.training.runner import TrainResult, train


def demo_train(
    folder: Path,
    registry: Registry,
    *,
    now: dt.datetime,
    rows: int = 5000,
    seed: int = 7,
    say: Callable[[str], None] = print,
) -> TrainResult:
    """Generate customers.csv, train churn (lr/rf/gb, 5 folds, online counterpart), show report and registry."""
    csv = write_churn_csv(folder / "customers.csv", rows=rows, seed=seed)
    say(f"== train: a churn model on {rows:,} generated customers ({csv})")
    cfg = TrainConfig(data=str(csv), target="churn", name="churn", online=True, seed=seed, report_dir=folder / "report")
    result = train(cfg, now=now, registry=registry)
    say(summary_table(result.report))
    man = registry.manifest("churn")
    say(
        f"\n== registry: {registry.root}/churn/{man.version} (live {registry.live('churn')}), {man.kind}, "
        f"sha256 {man.sha256[:12]}…, inputs {', '.join(i.column or i.name for i in man.inputs)}"
    )
    say(f"   report: {result.paths['html']}  ·  try: tidegate models show churn --registry {registry.root}")
    return result
