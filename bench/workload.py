"""The one workload every variant of the benchmark runs: digits, a small MLP, the same space,
trial count, epoch budget, scheduler and seed; only how trials are run differs.

Its module, :class:`bench.timed.TimedClassifier`, lives apart: a sweep's driver (``run_tune.py
launch``) imports no torch or Lightning, and a bench that imported them here with the workload
would measure a driver that does.
"""

from __future__ import annotations

from typing import Any

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
        "module": "bench.timed:TimedClassifier",
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
