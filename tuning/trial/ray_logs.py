"""Ray's log messages that every sweep triggers by design, kept off the user's console.

When ASHA stops a trial, Tune ends the trial's driver process; the Train run it owned goes with
it, and Train's controller and placement-group cleaner each log a warning (one with a traceback)
about the run's sudden end. In a sweep that is how most trials end, so the console would fill
with them. :func:`drop_expected_messages` runs in every Ray process of the sweep (Ray's
``worker_process_setup_hook``) and in the sweep's driver, and drops those messages alone;
anything else Ray logs still comes through.
"""

from __future__ import annotations

import logging

from typing_extensions import override

# logger name -> the start of each message that a stopped trial makes it log. Loggers of Train's
# private modules, named here rather than in tuning.compat: Ray runs this module in every one of
# its processes, which must import nothing heavy (compat imports Ray). Public way: none (they
# log at WARNING).
EXPECTED_MESSAGES: dict[str, tuple[str, ...]] = {
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


class _DropMessages(logging.Filter):
    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefixes)


def drop_expected_messages() -> None:
    """Filters :data:`EXPECTED_MESSAGES` out of their loggers in this process."""
    for name, prefixes in EXPECTED_MESSAGES.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMessages) for f in logger.filters):
            logger.addFilter(_DropMessages(prefixes))
