"""The record in storage: a snapshot (``leaderboard.json``) and the events logged since.

The sweep's driver logs events in segments, one small file per flush (:class:`EventLog`), and
writes a snapshot now and then, after which the segments it includes are removed. Readers
(``leaderboard``, ``best``, ``report``, ``resume``) fold the segments over the snapshot; a
trial's own look-ups (:func:`finished_trial`, :func:`recorded_epochs`) decode only its record
and its events, so that what a trial start costs does not grow with the sweep. A file of an
older lightsweep (a snapshot alone, format 1) reads as is.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

from tuning.config.spec import SweepSpec
from tuning.errors import SweepError
from tuning.record import events
from tuning.record.events import Event
from tuning.record.layout import EVENTS_DIR, LEDGER_FILE
from tuning.record.location import READ_ATTEMPTS, Location
from tuning.record.pareto import front_numbers, pareto_order, scored
from tuning.record.records import FINISHED, Cost, TrialRecord

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2  # 2: events logged beside the snapshot
SEGMENT_SUFFIX = ".jsonl"
_SEPARATORS = (",", ":")  # compact JSON
# How a snapshot of this lightsweep begins (older ones put "folded" after the sweep): what a
# trial's look-up reads of it before finding its record.
_SNAPSHOT_HEAD = re.compile(r'\{"format":(\d+),"folded":(\d+),')
# Events that make or hand over orphans (a resume's): a look-up that meets one folds them all.
_MOVING = ('"e":"orphan"', '"e":"adopt"')


class EventLog:
    """The driver's writer of event segments: events buffered, then written as one new file.

    A segment is written whole or not at all (an atomic local write, a completed upload), so a
    reader never sees half of one, and a driver killed loses at most the unflushed buffer.

    Args:
        experiment: The experiment directory.
        last: The last segment already written (0: none).
    """

    def __init__(self, experiment: Location, last: int = 0) -> None:
        self.experiment = experiment
        self.last = last
        self._buffer: list[str] = []
        self._since: float | None = None  # when the oldest buffered event came (monotonic)

    def add(self, event: Event) -> None:
        if self._since is None:
            self._since = time.monotonic()
        self._buffer.append(json.dumps(event, separators=_SEPARATORS))

    def due(self, interval_s: float) -> bool:
        """Whether the oldest buffered event has waited ``interval_s`` or more."""
        return self._since is not None and time.monotonic() - self._since >= interval_s

    def flush(self) -> None:
        """Writes the buffered events as the next segment (nothing if none)."""
        if not self._buffer:
            return
        self._segment(self.last + 1).write_text("\n".join(self._buffer) + "\n")
        self.last += 1
        self._buffer.clear()
        self._since = None

    def compact(self, through: int) -> None:
        """Removes the segments up to ``through``, which a snapshot now includes."""
        for seq, segment in self.segments(self.experiment):
            if seq <= through:
                segment.remove()

    def _segment(self, seq: int) -> Location:
        return self.experiment / EVENTS_DIR / f"{seq:010d}{SEGMENT_SUFFIX}"

    @staticmethod
    def segments(experiment: Location, after: int = 0) -> list[tuple[int, Location]]:
        """The experiment's segments after ``after``, in order."""
        found = []
        for relative, _ in (experiment / EVENTS_DIR).files():
            name = relative.rsplit("/", 1)[-1]
            if name.endswith(SEGMENT_SUFFIX) and name[: -len(SEGMENT_SUFFIX)].isdigit():
                seq = int(name[: -len(SEGMENT_SUFFIX)])
                if seq > after:
                    found.append((seq, experiment / EVENTS_DIR / name))
        return sorted(found, key=lambda s: s[0])


@dataclass
class Ledger:
    """The record of a sweep: every trial's :class:`TrialRecord`, and the sweep it belongs to."""

    spec: SweepSpec
    trials: dict[str, TrialRecord] = field(default_factory=dict)
    logged: int = 0  # the last event segment these records include
    # The ids of orphan trials (found on first need; rare, and only a resume makes them): every
    # new trial asks for one, and scanning all trials each time grew with the sweep.
    _orphans: set[str] | None = field(default=None, init=False, repr=False, compare=False)
    # Each record's JSON as the last snapshot wrote it, and the trials changed since (records
    # change only through :meth:`apply`): a snapshot encodes only those, not the whole sweep.
    _encoded: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)
    _changed: set[str] = field(default_factory=set, init=False, repr=False, compare=False)

    @property
    def pareto(self) -> bool:
        """Whether trials are ranked by Pareto front (several objectives, or constraints)."""
        return self.spec.multi_objective or bool(self.spec.constraints)

    def fronts(self) -> dict[str, int]:
        """Each scored trial's Pareto front (1: non-dominated), from its last scored epoch;
        trials that break a constraint are on fronts after every feasible one."""
        objectives, constraints = self.spec.objective_list, self.spec.constraint_list
        metrics = [o.metric for o in objectives]
        found = [(t.trial_id, p) for t in self.trials.values()
                 if (e := t.last_scored_epoch(metrics)) is not None
                 and (p := scored(e.metrics, objectives, constraints)) is not None]
        points, violations = [p for _, (p, _) in found], [v for _, (_, v) in found]
        numbers = front_numbers(points, violations)
        return {found[i][0]: numbers[i] for i in pareto_order(points, violations)}

    def ranked(self) -> list[TrialRecord]:
        """All trials, best first (by Pareto front, then spread along it, when :attr:`pareto`);
        trials without a value last, in start order."""
        if self.pareto:
            return self._pareto_ranked(self.fronts())
        metric, mode = self.spec.metric, self.spec.mode

        def key(record: TrialRecord) -> tuple[int, float]:
            best = record.best_epoch(metric, mode)
            if best is None:
                return (1, 0.0)
            value = best.metrics[metric]
            return (0, -value if mode == "max" else value)

        return sorted(self.trials.values(), key=key)

    def cost(self) -> Cost:
        """What the sweep spent, and what early stopping saved (see :class:`Cost`)."""
        trials = list(self.trials.values())
        max_epochs = self.spec.scheduler.max_epochs
        per_epoch = [c for c in (t.epoch_worker_seconds() for t in trials) if c is not None]
        typical = sorted(per_epoch)[len(per_epoch) // 2] if per_epoch else 0.0
        stopped = [t for t in trials if t.status == "stopped"]
        return Cost(
            epochs=sum(t.epochs for t in trials),
            worker_seconds=sum(t.worker_seconds for t in trials),
            epochs_saved=sum(max_epochs - t.epochs for t in stopped),
            worker_seconds_saved=sum(
                (max_epochs - t.epochs) * (t.epoch_worker_seconds() or typical) for t in stopped),
        )

    def rows(self) -> list[dict[str, Any]]:
        """The leaderboard: :meth:`TrialRecord.to_dict` of every trial, best first."""
        if not self.pareto:
            rows = [t.to_dict(self.spec.metric, self.spec.mode) for t in self.ranked()]
        else:
            fronts = self.fronts()
            metrics = [o.metric for o in self.spec.objective_list]
            shown = self.spec.shown_metrics
            rows = [t.to_dict(self.spec.metric, self.spec.mode,
                              (metrics, shown, fronts.get(t.trial_id)))
                    for t in self._pareto_ranked(fronts)]
        names = self.spec.shown_keys  # a Hydra project's own names for its searched keys
        if names:
            for row in rows:
                row["config"] = {names.get(k, k): v for k, v in row["config"].items()}
        return rows

    def _pareto_ranked(self, fronts: dict[str, int]) -> list[TrialRecord]:
        return [*(self.trials[t] for t in fronts),
                *(t for t in self.trials.values() if t.trial_id not in fronts)]

    def reconcile(self, known: set[str], run: int = 0) -> list[Event]:
        """What settles, before a resume, the trials that the restored Ray Tune does not know.

        Ray Tune restores the trials of its last saved state. One created after it and still
        running is lost (its configuration, proposed again, runs again); one that also finished
        becomes an orphan, whose result the re-proposed configuration takes (:meth:`adoption`).
        Trials added by runs before ``run`` (:attr:`TrialRecord.added_by`: an extended sweep's
        earlier runs) were never this Tune's: they stay as they are.

        Returns:
            The events to apply and log.
        """
        settled: list[Event] = []
        for trial_id, record in self.trials.items():
            if trial_id in known or record.added_by < run:
                continue
            if record.status in FINISHED:
                settled.append(events.orphaned(trial_id))
                continue
            settled.append(events.dropped(trial_id))
            if record.history:
                logger.warning(
                    "trial %s started after Ray Tune last saved its state and cannot be resumed "
                    "(%d epochs lost); its configuration runs again as a new trial",
                    trial_id, record.epochs,
                )
        return settled

    def apply(self, event: Event) -> None:
        """Folds one event into the records (:func:`tuning.record.events.apply`)."""
        events.apply(self.trials, event)
        self._changed.add(event["id"])
        if event["e"] in ("orphan", "adopt", "drop"):
            self._orphans = None  # found again when next needed
        if "from" in event:  # an adoption empties the orphan's place
            self._changed.add(event["from"])

    def orphan_for(self, config: dict[str, Any]) -> TrialRecord | None:
        """A finished orphan trial of exactly this configuration, if any."""
        if self._orphans is None:
            self._orphans = {i for i, r in self.trials.items() if r.orphan}
        found = (self.trials.get(i) for i in self._orphans)
        return next((r for r in found if r is not None and r.orphan and r.config == config), None)

    def adoption(self, trial_id: str, config: dict[str, Any]) -> Event | None:
        """The event handing an orphan of the same configuration to new trial ``trial_id``."""
        record = self.orphan_for(config)
        if record is None:
            return None
        logger.info("trial %s: configuration finished before the restart as trial %s; its result "
                    "is kept, not trained again", trial_id, record.trial_id)
        return events.adopted(trial_id, record.trial_id)

    def save(self, experiment: Location) -> None:
        """Writes the snapshot: every record, and the last event segment they include."""
        for trial_id in self._changed:
            self._encoded.pop(trial_id, None)
        self._changed.clear()
        records = []
        for trial_id, record in self.trials.items():
            text = self._encoded.get(trial_id)
            if text is None:
                text = self._encoded[trial_id] = json.dumps(record.as_data(), separators=_SEPARATORS)
            records.append(text)
        head = json.dumps({"format": FORMAT_VERSION, "folded": self.logged,
                           "sweep": self.spec.model_dump(mode="json")}, separators=_SEPARATORS)
        (experiment / LEDGER_FILE).write_text(f'{head[:-1]},"trials":[{",".join(records)}]}}')

    @classmethod
    def load(cls, experiment: str | Location) -> Ledger:
        """Reads an experiment's record, from a directory or a cloud URI: the snapshot, and the
        events logged since.

        Raises:
            SweepError: If the directory holds no lightsweep experiment, or cannot be read.
        """
        for attempt in range(READ_ATTEMPTS):
            ledger = cls._load_snapshot(experiment)
            try:
                segments = EventLog.segments(Location.parse(experiment), after=ledger.logged)
                if segments and segments[0][0] != ledger.logged + 1 and attempt < READ_ATTEMPTS - 1:
                    continue  # the driver wrote a newer snapshot and compacted meanwhile
                for seq, segment in segments:
                    for line in segment.read_text().splitlines():
                        ledger.apply(json.loads(line))
                    ledger.logged = seq
            except FileNotFoundError:  # compacted while read: the newer snapshot holds it
                continue
            return ledger
        raise SweepError(f"{experiment}: its record kept changing while read. Fix: read it again")

    @classmethod
    def load_if_any(cls, experiment: Location) -> Ledger | None:
        """The experiment's record, or None before the sweep's driver first wrote it.

        Raises:
            SweepError: As :meth:`load`.
        """
        return cls.load(experiment) if (experiment / LEDGER_FILE).is_file() else None

    @classmethod
    def _load_snapshot(cls, experiment: str | Location) -> Ledger:
        try:
            path = Location.parse(experiment) / LEDGER_FILE
            data = path.read_json() if path.is_file() else None
        except (ValueError, OSError) as error:  # a malformed URI, no credentials, no bucket
            raise SweepError(
                f"{experiment}: cannot read it ({error}). Fix: check the path or URI, and the "
                "credentials for its storage"
            ) from error
        if data is None:
            raise SweepError(
                f"{experiment}: not a lightsweep experiment (no {LEDGER_FILE}). Fix: pass the "
                "directory or URI that launch printed, e.g. runs/<name>"
            )
        written = data.get("format", FORMAT_VERSION)
        if not isinstance(written, int) or written > FORMAT_VERSION:
            raise SweepError(
                f"{experiment}: its {LEDGER_FILE} is of format {written!r}, newer than this "
                f"lightsweep reads ({FORMAT_VERSION}). Fix: read it with the lightsweep that "
                "wrote it (pip install --upgrade lightsweep)"
            )
        trials = {raw["trial_id"]: TrialRecord.from_data(raw) for raw in data["trials"]}
        return cls(SweepSpec.read(data["sweep"]), trials, logged=data.get("folded", 0))


class _NeedsFold(Exception):
    """A record a trial's look-up cannot read alone: an older snapshot's, or one that events
    moved between trials (orphans, adoptions; only a resume makes them)."""


def _own_record(experiment: Location, trial_id: str) -> TrialRecord | None:
    """Trial ``trial_id``'s record, decoding only its part of the snapshot and its events.

    Raises:
        _NeedsFold: Where only :meth:`Ledger.load` can tell.
    """
    for _ in range(READ_ATTEMPTS):
        path = experiment / LEDGER_FILE
        if not path.is_file():
            return None
        text = path.read_text()
        head = _SNAPSHOT_HEAD.match(text)
        if head is None or int(head[1]) != FORMAT_VERSION or '"orphan":true' in text:
            raise _NeedsFold
        folded = int(head[2])
        record = None
        start = text.find('{"trial_id":' + json.dumps(trial_id) + ",")
        if start >= 0:
            data = json.JSONDecoder().raw_decode(text, start)[0]
            if data.get("trial_id") != trial_id or "history" not in data:
                raise _NeedsFold  # not a record: the same text inside some configuration
            record = TrialRecord.from_data(data)
        trials = {trial_id: record} if record is not None else {}
        mention = '"id":' + json.dumps(trial_id)
        try:
            segments = EventLog.segments(experiment, after=folded)
            if segments and segments[0][0] != folded + 1:
                continue  # the driver wrote a newer snapshot and compacted meanwhile
            for _, segment in segments:
                for line in segment.read_text().splitlines():
                    if any(kind in line for kind in _MOVING):
                        raise _NeedsFold
                    if mention in line:
                        event = json.loads(line)
                        if event["id"] == trial_id:
                            events.apply(trials, event)
        except FileNotFoundError:  # compacted while read: the newer snapshot holds it
            continue
        return trials.get(trial_id)
    raise _NeedsFold


def _trial_record(
    experiment: Location, trial_id: str, config: dict[str, Any] | None = None
) -> TrialRecord | None:
    """Trial ``trial_id``'s record, or else, with ``config``, a finished orphan's of that
    configuration (see :meth:`Ledger.reconcile`); the whole record is folded only where the
    trial's own part cannot tell (:func:`_own_record`)."""
    try:
        return _own_record(experiment, trial_id)  # no orphans where it answers
    except _NeedsFold:
        ledger = Ledger.load_if_any(experiment)
        if ledger is None:
            return None
        record = ledger.trials.get(trial_id)
        return record if record is not None or config is None else ledger.orphan_for(config)


def finished_trial(
    experiment: Location, trial_id: str, config: dict[str, Any]
) -> TrialRecord | None:
    """The trial's record if the leaderboard says it already finished (completed or stopped),
    under its own id or as an orphan of the same configuration (see :meth:`Ledger.reconcile`)."""
    record = _trial_record(experiment, trial_id, config)
    return record if record is not None and record.status in FINISHED else None


def last_checkpoint(experiment: Location, trial_id: str) -> str | None:
    """The directory of the last checkpoint the leaderboard holds of trial ``trial_id``."""
    record = _trial_record(experiment, trial_id)
    saved = [e for e in record.history if e.checkpoint] if record is not None else []
    return Location.parse(max(saved, key=lambda e: e.epoch).checkpoint or "").parent.uri \
        if saved else None


def recorded_epochs(experiment: Location, trial_id: str) -> int:
    """The last epoch of trial ``trial_id`` that the leaderboard holds (0: none)."""
    record = _trial_record(experiment, trial_id)
    return record.epochs if record is not None else 0
