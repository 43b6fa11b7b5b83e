"""The record's events: what the sweep's driver logs as trials start, report and end.

An event is one small JSON object; :func:`apply` folds it into the trial records. The driver
changes its records only through :func:`apply`, so the log it writes and the records it holds
never disagree. Each event costs the same however large the sweep: the log grows by what
happened, never by what is already known.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, replace
from typing import Any

from tuning.record.records import EpochRecord, TrialRecord

logger = logging.getLogger(__name__)

Event = dict[str, Any]


def added(trial_id: str, config: dict[str, Any], added_by: int = 0) -> Event:
    """A trial Tune created (pending until it starts), by the sweep's run ``added_by`` (0: its
    launch; k: its k-th extension)."""
    return {"e": "add", "id": trial_id, "config": config,
            **({"added_by": added_by} if added_by else {})}


def status(trial_id: str, value: str, error: str | None = None, by: str | None = None) -> Event:
    """A trial's status changed (``error`` with ``errored``; ``by``: what stopped it, when not
    the scheduler: ``budget``)."""
    return {"e": "status", "id": trial_id, "status": value, "error": error,
            **({"by": by} if by else {})}


def epoch(trial_id: str, record: EpochRecord) -> Event:
    """A reported epoch; one of the same number, reported again, replaces it."""
    return {"e": "epoch", "id": trial_id, "epoch": asdict(record)}


def usage(trial_id: str, checkpoints: int, checkpoint_bytes: int) -> Event:
    """The checkpoints a trial keeps in storage now, measured."""
    return {"e": "usage", "id": trial_id, "checkpoints": checkpoints, "bytes": checkpoint_bytes}


def orphaned(trial_id: str) -> Event:
    """A finished trial that the restored Ray Tune does not know (see ``Ledger.reconcile``)."""
    return {"e": "orphan", "id": trial_id}


def dropped(trial_id: str) -> Event:
    """An unfinished trial that the restored Ray Tune does not know: it is gone."""
    return {"e": "drop", "id": trial_id}


def adopted(trial_id: str, orphan_id: str) -> Event:
    """New trial ``trial_id`` takes over the finished orphan of the same configuration."""
    return {"e": "adopt", "id": trial_id, "from": orphan_id}


def exploited(trial_id: str, exploit: dict[str, Any], config: dict[str, Any]) -> Event:
    """Population-based training moved the trial onto another trial's checkpoint, with
    ``config`` (``exploit``: :class:`tuning.record.lineage.Exploit`'s data)."""
    return {"e": "exploit", "id": trial_id, "exploit": exploit, "config": config}


def ran(trial_id: str, facts: dict[str, str]) -> Event:
    """The trial's workers reported what they ran on (:attr:`TrialRecord.ran`)."""
    return {"e": "ran", "id": trial_id, "ran": facts}


def apply(trials: dict[str, TrialRecord], event: Event) -> None:
    """Folds one event into ``trials``.

    An event about a trial the records lack (its ``add`` compacted away by an older lightsweep,
    say) creates it rather than fail: a record is better incomplete than unreadable.
    """
    kind, trial_id = event["e"], event["id"]
    if kind == "drop":
        trials.pop(trial_id, None)
        return
    if kind == "adopt":
        record = trials.pop(event["from"], None)
        if record is not None:
            record.trial_id, record.orphan = trial_id, False
            trials[trial_id] = record
        return
    record = trials.get(trial_id)
    if record is None:
        record = trials[trial_id] = TrialRecord(trial_id)
    if kind == "add":
        record.config = event["config"]
        record.added_by = event.get("added_by", 0)
    elif kind == "status":
        record.status, record.error = event["status"], event.get("error")
        record.stopped_by = event.get("by")
    elif kind == "epoch":
        entry = EpochRecord(**event["epoch"])
        history = [e for e in record.history if e.epoch != entry.epoch]
        if history and history[-1].epoch > entry.epoch:
            history = sorted([*history, entry], key=lambda e: e.epoch)
        else:
            history.append(entry)
        record.history = history
    elif kind == "usage":
        record.checkpoints, record.checkpoint_bytes = event["checkpoints"], event["bytes"]
    elif kind == "ran":
        record.ran = event["ran"]
    elif kind == "orphan":
        record.orphan = True
    elif kind == "exploit":
        exploit = event["exploit"]
        record.lineage = [*record.lineage, exploit]
        record.config = event["config"]
        # Its Train run starts over from the copy: its own checkpoints are gone, and epochs
        # after the donor's are trained again.
        record.history = [replace(e, checkpoint=None) for e in record.history
                          if e.epoch <= exploit["epoch"]]
    else:
        logger.warning("trial %s: an event of unknown kind %r, skipped", trial_id, kind)
