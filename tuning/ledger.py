"""Where the record's names lived before :mod:`tuning.record`.

Ray Tune pickles its callbacks into an experiment's state: experiments of an older lightsweep
name ``tuning.ledger.LedgerCallback`` (and the ``Ledger`` it held), and resume unpickles them.
"""

from tuning.record import EpochRecord, Ledger, LedgerCallback, TrialRecord

__all__ = ["EpochRecord", "Ledger", "LedgerCallback", "TrialRecord"]
