"""One trial: its driver (:mod:`~tuning.trial.driver`, a Tune function that runs a Ray Train
run) and its Train workers (:mod:`~tuning.trial.worker` and what it uses: Lightning, callbacks,
tracking).

The trial's driver never imports Lightning; only the workers do. Ray runs
:mod:`~tuning.trial.ray_logs` in every process, so this package imports nothing on import.
"""

from __future__ import annotations

import importlib
from typing import Any

# Experiments of an older lightsweep, whose ``tuning.trial`` was a module, name these in the
# trainable and the directory-name function Ray Tune pickled.
_OLD_NAMES = {"run_trial": "tuning.trial.driver", "trial_dirname": "tuning.record.layout"}


def __getattr__(name: str) -> Any:
    if name not in _OLD_NAMES:
        raise AttributeError(f"module 'tuning.trial' has no attribute {name!r}")
    return getattr(importlib.import_module(_OLD_NAMES[name]), name)
