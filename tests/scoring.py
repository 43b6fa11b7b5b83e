"""A loaded model scored as its trial scored it: Lightning's validation loop on one CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from tuning.read.results import BestTrial
from tuning.record import Ledger


def validate(model: Any, datamodule: Any) -> dict[str, float]:
    """The validation metrics of ``model`` on ``datamodule``."""
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                         enable_model_summary=False)
    [metrics] = trainer.validate(model, datamodule=datamodule, verbose=False)
    return {k: float(v) for k, v in metrics.items()}


def logged_at_checkpoint(experiment: Path, best: BestTrial, metric: str = "val/acc") -> float:
    """What ``best``'s trial logged of ``metric`` at the epoch its checkpoint holds."""
    history = Ledger.load(experiment).trials[best.trial_id].history
    return float(next(e for e in history if e.epoch == best.checkpoint_epoch).metrics[metric])
