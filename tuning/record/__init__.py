"""The record of a sweep: what each trial did, kept in the experiment directory.

Written by the sweep's driver (:class:`LedgerCallback`) as events over a snapshot, and read by
everything else (:meth:`Ledger.load`), trials' own look-ups included.
"""

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
from tuning.record.store import EventLog, Ledger, finished_trial, recorded_epochs

__all__ = [
    "FINISHED",
    "STATUSES",
    "Cost",
    "EpochRecord",
    "EventLog",
    "Ledger",
    "LedgerCallback",
    "TrialRecord",
    "end_status",
    "finished_trial",
    "is_finite_number",
    "recorded_epochs",
]
