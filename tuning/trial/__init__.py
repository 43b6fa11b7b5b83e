"""One trial: its driver (:mod:`~tuning.trial.driver`, a Tune function that runs a Ray Train
run) and its Train workers (:mod:`~tuning.trial.worker` and what it uses: Lightning, callbacks,
tracking).

The trial's driver never imports Lightning; only the workers do. Ray runs
:mod:`~tuning.trial.ray_logs` in every process, so this package imports nothing on import.
"""

from __future__ import annotations
