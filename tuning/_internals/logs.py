"""Ray's log lines that a sweep makes by design, named by the loggers of Train's private modules.

When ASHA stops a trial, Tune ends the trial's process; the Train run it owned goes with it, and
Train's controller and placement-group cleaner each log a warning (one with a traceback) about
the run's sudden end. Train also names one logger by its module's file path, out of
``LoggingConfig``'s reach, and logs a line per report from every worker there. Private: these
loggers' names. Public way: none (they log at WARNING, or under a file path). Nothing here
imports Ray: every Ray process of a sweep runs :mod:`tuning.trial.ray_logs`.
"""

from __future__ import annotations

import importlib.util

# "1": every line of Ray, Tune, Optuna and Lightning reaches the console (launch --verbose).
VERBOSE_ENV = "LIGHTSWEEP_VERBOSE"

# logger name -> the start of each message that a sweep makes it log by design
EXPECTED_MESSAGES: dict[str, tuple[str, ...]] = {
    # A local Ray that the sweep starts for itself, on this machine alone.
    "ray._private.authentication.authentication_token_setup": (
        "Token authentication is enabled for this Ray cluster",
    ),
    # Each run's start, at INFO, where Ray has no Train LoggingConfig to quiet it (before 2.56).
    "ray.train.v2._internal.execution.worker_group.worker_group": (
        "Attempting to start training worker group", "Started training worker group",
    ),
    "ray.train.v2._internal.callbacks.backend_setup": (
        "Graceful shutdown of backend failed",
    ),
    "ray.train.v2._internal.execution.controller.placement_group_cleaner": (
        "Detected that the Ray Train controller actor",
    ),
    # Tune saves its experiment state whenever a trial has written num_to_keep checkpoints since
    # the last save (so that no saved state names a removed one), and warns when that is often:
    # inline trials of short epochs always do (tuning.trial.session), by design.
    "ray.tune.execution.experiment_state": (
        "Experiment state snapshotting has been triggered multiple times",
    ),
}


def verbose() -> bool:
    """Whether the user asked to see every tool's lines (:data:`VERBOSE_ENV`)."""
    import os

    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


# Tune's storage logs each checkpoint it persists at INFO, in the trial's process: for an inline
# trial that is a console line per epoch.
TUNE_STORAGE_LOGGER = "ray.train._internal.storage"


def train_context_logger() -> str | None:
    """The name of the logger of Train's per-report lines (its module's file), or None where
    this Ray has no such module."""
    try:
        spec = importlib.util.find_spec("ray.train.v2._internal.execution.context")
    except ImportError:
        return None
    return None if spec is None else spec.origin
