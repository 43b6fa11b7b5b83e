"""lightsweep: tune and scale PyTorch Lightning models on Ray.

Sub-packages by where they run: :mod:`tuning.config` (the sweep file, read anywhere),
:mod:`tuning.driver` (the sweep's driver), :mod:`tuning.trial` (each trial's driver and its Train
workers), :mod:`tuning.record` (the experiment's record in storage, written by the driver, read by
all) and :mod:`tuning.read` (what users read of an experiment). :mod:`tuning._internals` holds every
private part of Ray, Lightning, torch, Optuna and W&B that lightsweep uses, each behind a layer
that falls back to the public way where a release moved it.

The public API mirrors the command line::

    import tuning
    outcome = tuning.launch("search_spaces/mnist1d_cnn.yaml", num_samples=8)
    best = tuning.fetch_best(outcome.path)
    model = best.load_model()
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tuning.config.spec import SweepSpec, load_spec
    from tuning.driver.sweep import SweepOutcome, launch, resume
    from tuning.errors import SweepError
    from tuning.read.results import BestTrial, fetch_best, leaderboard

# Imported on first use: every Ray process of a sweep imports this package (for its log filter,
# tuning.trial.ray_logs), and most of them need none of Ray Tune, Optuna or pandas.
_EXPORTS = {
    "SweepError": "tuning.errors",
    "BestTrial": "tuning.read.results", "fetch_best": "tuning.read.results",
    "leaderboard": "tuning.read.results",
    "SweepSpec": "tuning.config.spec", "load_spec": "tuning.config.spec",
    "SweepOutcome": "tuning.driver.sweep", "launch": "tuning.driver.sweep",
    "resume": "tuning.driver.sweep",
}

__all__ = ["BestTrial", "SweepError", "SweepOutcome", "SweepSpec", "fetch_best", "launch",
           "leaderboard", "load_spec", "resume"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tuning' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
