"""lightsweep: tune and scale PyTorch Lightning models on Ray.

The public API mirrors the command line::

    import tuning
    outcome = tuning.launch("search_spaces/mnist1d_cnn.yaml", num_samples=8)
    best = tuning.fetch_best(outcome.path)
    model = best.load_model()
"""

from tuning.errors import SweepError
from tuning.results import BestTrial, fetch_best, leaderboard
from tuning.spec import SweepSpec, load_spec
from tuning.sweep import SweepOutcome, launch, resume

__all__ = ["BestTrial", "SweepError", "SweepOutcome", "SweepSpec", "fetch_best", "launch",
           "leaderboard", "load_spec", "resume"]
