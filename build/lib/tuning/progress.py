"""Line-per-event progress of a sweep, through logging (one line per trial event)."""

from __future__ import annotations

import logging
from typing import Any

from ray.tune import Callback
from ray.tune.experiment import Trial

from tuning.ledger import describe_error, end_status, trial_error

logger = logging.getLogger("lightsweep.progress")


def _fmt_config(config: dict[str, Any]) -> str:
    return " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in config.items()
    )


class ProgressCallback(Callback):
    """Logs trial starts, each epoch's metric with the best so far, and how trials end."""

    def __init__(self, metric: str, mode: str, max_epochs: int) -> None:
        self.metric, self.mode, self.max_epochs = metric, mode, max_epochs
        self.best: tuple[float, str] | None = None

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        logger.info("trial %s started: %s", trial.trial_id, _fmt_config(trial.config))

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        value = result.get(self.metric)
        epoch = int(result.get("epoch", 0))
        if isinstance(value, int | float):
            better = self.best is None or (
                value > self.best[0] if self.mode == "max" else value < self.best[0]
            )
            if better:
                self.best = (float(value), trial.trial_id)
        best = f"{self.best[0]:.4f} ({self.best[1]})" if self.best else "-"
        shown = f"{value:.4f}" if isinstance(value, int | float) else "n/a"
        logger.info(
            "trial %s epoch %d/%d: %s=%s  best so far %s",
            trial.trial_id, epoch, self.max_epochs, self.metric, shown, best,
        )

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        epochs = int(trial.last_result.get("epoch", 0))  # restored with the trial on resume
        how = {"completed": "completed", "stopped": "stopped early"}[
            end_status(epochs, self.max_epochs)
        ]
        logger.info("trial %s %s after %d epochs", trial.trial_id, how, epochs)

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        logger.warning(
            "trial %s errored: %s", trial.trial_id, describe_error(trial_error(trial))
        )
