"""The one workload every variant of the benchmark runs: digits, a small MLP, the same space,
trial count, epoch budget, scheduler and seed; only how trials are run differs.

:class:`TimedClassifier` is the user's module with a stopwatch: it logs how long its fit has run
(``bench/fit_s``), its epoch (``bench/epoch``, 1-based), the samples it trained on
(``bench/samples``) and how long the previous
epoch's end took before this epoch started (``bench/report_gap_s``: the checkpoint and report).
"""

from __future__ import annotations

import time
from typing import Any

from lightning_modules import Classifier

TRIALS = 8
MAX_EPOCHS = 5
GRACE_PERIOD = 1
REDUCTION_FACTOR = 2
SEED = 0
CONCURRENCY = 2  # trials at once: this machine's cores, one worker (one CPU) per trial
METRIC, MODE = "val/acc", "max"
MODULE_ARGS: dict[str, Any] = {"arch": "mlp", "input_shape": [8, 8], "width": 64, "depth": 2}
LR_RANGE = (1e-4, 3e-1)
BATCH_SIZES = [32, 64]
# One configuration fitted alone, with nothing else running, through lightsweep and in plain
# Lightning: the cost of running inside a trial, apart from concurrent trials' contention.
ALONE_CONFIG = {"lr": 1e-2, "batch_size": 32, "epochs": MAX_EPOCHS}


class TimedClassifier(Classifier):
    """:class:`Classifier` that logs its own fit time, samples and end-of-epoch gaps."""

    def on_fit_start(self) -> None:
        self._fit_start = time.perf_counter()
        self._samples = 0
        self._epoch_done: float | None = None
        self._gap = 0.0

    def on_train_epoch_start(self) -> None:
        if self._epoch_done is not None:
            self._gap = time.perf_counter() - self._epoch_done

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._samples += len(batch[1])

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        # The last hook before the epoch's end-of-epoch work (checkpoint, report).
        self.log("bench/fit_s", time.perf_counter() - self._fit_start, sync_dist=True)
        self.log("bench/samples", float(self._samples), sync_dist=True)
        self.log("bench/report_gap_s", self._gap, sync_dist=True)
        self.log("bench/epoch", float(self.current_epoch + 1), sync_dist=True)
        self._epoch_done = time.perf_counter()


def sweep_spec_data(storage: str, alone: bool = False, runner: str = "train") -> dict[str, Any]:
    """The workload as a lightsweep sweep file; ``alone``: just :data:`ALONE_CONFIG`'s trial;
    ``runner``: ``resources.trial_runner``."""
    if alone:
        return {**sweep_spec_data(storage, runner=runner),
                "space": {"module.lr": ALONE_CONFIG["lr"],
                          "datamodule.batch_size": ALONE_CONFIG["batch_size"]},
                "search": {"num_samples": 1, "seed": SEED},
                "resources": {"workers_per_trial": 1, "cpus_per_worker": 1, "max_concurrent": 1,
                              "trial_runner": runner}}
    return {
        "module": "bench.workload:TimedClassifier",
        "datamodule": "lightning_modules.datamodules:DigitsDataModule",
        "module_args": MODULE_ARGS,
        "space": {"module.lr": {"loguniform": list(LR_RANGE)},
                  "datamodule.batch_size": {"choice": BATCH_SIZES}},
        "metric": METRIC, "mode": MODE,
        "search": {"num_samples": TRIALS, "seed": SEED},
        "scheduler": {"max_epochs": MAX_EPOCHS, "grace_period": GRACE_PERIOD,
                      "reduction_factor": REDUCTION_FACTOR},
        "resources": {"workers_per_trial": 1, "cpus_per_worker": 1,
                      "max_concurrent": CONCURRENCY, "trial_runner": runner},
        "storage": storage,
        # Like the baselines, which log to no tracker: this measures running trials.
        "wandb": {"enabled": False},
    }
