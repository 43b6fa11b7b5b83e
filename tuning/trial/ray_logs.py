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

from tuning._internals.logs import EXPECTED_MESSAGES, verbose


class _DropMessages(logging.Filter):
    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefixes)


def drop_expected_messages() -> None:
    """Filters :data:`EXPECTED_MESSAGES` out of their loggers in this process (all kept with
    ``launch --verbose``)."""
    if verbose():
        return
    for name, prefixes in EXPECTED_MESSAGES.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMessages) for f in logger.filters):
            logger.addFilter(_DropMessages(prefixes))
