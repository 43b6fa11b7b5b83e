"""The record of a sweep: what each trial did, kept in the experiment directory, and where
things live there (:mod:`~tuning.record.layout`, :mod:`~tuning.record.location`).

Written by the sweep's driver (:class:`LedgerCallback`) as events over a snapshot, and read by
everything else (:meth:`Ledger.load`), trials' own look-ups included. Its names are imported on
first use: Train workers read the layout alone.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tuning.record.callback import LedgerCallback
    from tuning.record.records import (
        FINISHED,
        STATUSES,
        Cost,
        EpochRecord,
        TrialRecord,
        end_status,
        is_finite_number,
    )
    from tuning.record.store import (
        EventLog,
        Ledger,
        finished_trial,
        last_checkpoint,
        recorded_epochs,
    )

_EXPORTS = {
    "LedgerCallback": "tuning.record.callback",
    **{name: "tuning.record.records" for name in (
        "FINISHED", "STATUSES", "Cost", "EpochRecord", "TrialRecord", "end_status",
        "is_finite_number")},
    **{name: "tuning.record.store" for name in (
        "EventLog", "Ledger", "finished_trial", "last_checkpoint", "recorded_epochs")},
}

__all__ = ["FINISHED", "STATUSES", "Cost", "EpochRecord", "EventLog", "Ledger", "LedgerCallback",
           "TrialRecord", "end_status", "finished_trial", "is_finite_number", "last_checkpoint",
           "recorded_epochs"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tuning.record' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
