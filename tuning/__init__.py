"""lightsweep: tune and scale PyTorch Lightning models on Ray.

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
    from tuning.errors import SweepError
    from tuning.results import BestTrial, fetch_best, leaderboard
    from tuning.spec import SweepSpec, load_spec
    from tuning.sweep import SweepOutcome, launch, resume

# Imported on first use: every Ray process of a sweep imports this package (for its log filter,
# tuning.ray_logs), and most of them need none of Ray Tune, Optuna or pandas.
_EXPORTS = {
    "SweepError": "tuning.errors",
    "BestTrial": "tuning.results", "fetch_best": "tuning.results", "leaderboard": "tuning.results",
    "SweepSpec": "tuning.spec", "load_spec": "tuning.spec",
    "SweepOutcome": "tuning.sweep", "launch": "tuning.sweep", "resume": "tuning.sweep",
}

__all__ = ["BestTrial", "SweepError", "SweepOutcome", "SweepSpec", "fetch_best", "launch",
           "leaderboard", "load_spec", "resume"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tuning' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
