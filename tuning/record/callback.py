"""The Tune callback that keeps the record, on the sweep's driver.

Each trial event becomes one record event, folded into the driver's records and logged; the
log is flushed every :data:`FLUSH_S` seconds (and when the sweep ends), and the snapshot rewritten
once the events logged since the last one reach a share of those it holds
(:data:`SNAPSHOT_GROWTH`). A snapshot's cost grows with the sweep, and so does the number of
events between two of them: a report costs the same at the 60,000th as at the first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ray.train.constants import CHECKPOINT_DIR_NAME
from ray.tune import Callback
from ray.tune.experiment import Trial
from ray.tune.integration.ray_train import CHECKPOINT_PATH_KEY
from typing_extensions import override

from tuning._internals.tune_results import TIME_THIS_ITER_S, auto_result_keys
from tuning.config.spec import SweepSpec
from tuning.contracts import CONTINUES_KEY, LINEAGE_KEY, RAN_PREFIX, RESENT_CHECKPOINT_KEY
from tuning.errors import StorageFullError, describe_error, is_storage_full, trial_error
from tuning.record import events
from tuning.record.events import Event
from tuning.record.layout import (
    CHECKPOINT_NAME,
    checkpoint_usage,
    remove_stray_checkpoints,
    trial_path,
)
from tuning.record.location import Location
from tuning.record.records import (
    FINISHED,
    EpochRecord,
    TrialRecord,
    end_status,
    is_finite_number,
)
from tuning.record.store import EventLog, Ledger

FLUSH_S = 2.0  # the most events a killed driver loses: those of its last seconds
SNAPSHOT_GROWTH = 0.5  # a snapshot once the log holds this many events per event it holds
SNAPSHOT_MIN_EVENTS = 500
# ... and at least this often while events come: readers (a cloud one fetches each segment)
# fold at most this many seconds of segments. A snapshot encodes only the records changed since
# the last one, but writes (uploads) the whole file: the age-based ones wait long enough to keep
# their share of the driver's time at most SNAPSHOT_SHARE.
SNAPSHOT_MAX_AGE_S = 60.0
SNAPSHOT_SHARE = 0.01
TIDY_AFTER_S = 10.0
LAST_TIDY_WAIT_S = 3.0
_NOT_METRICS = ("epoch", "trial_id", "experiment_tag", "done")


class LedgerCallback(Callback):
    """Keeps the experiment's record current from Tune's trial events (runs on the driver).

    Args:
        experiment: The experiment directory.
        spec: The sweep, as this run of it runs it (an extension's asks for more trials).
        added_by: Which run of the sweep this is: 0 its launch, k its k-th extension; the
            trials it adds are marked so (:attr:`TrialRecord.added_by`).
        stopped_by: What stopped a trial, when not its scheduler (a module-level function: Tune
            pickles its callbacks): :func:`tuning.driver.budget.stopped_by`.
    """

    def __init__(self, experiment: Location, spec: SweepSpec, added_by: int = 0,
                 stopped_by: Callable[[str], str | None] | None = None) -> None:
        self.experiment = experiment
        self.ledger = Ledger(spec)
        self.added_by = added_by
        self.stopped_by = stopped_by
        # A run made now (a launch, an extension) records its spec; one Tune restored (from the
        # pickle) keeps the record's, which a resume may have changed (a raised budget).
        self._new_spec = True
        self._fresh_state()

    def _fresh_state(self) -> None:
        self._to_tidy: dict[str, float] = {}  # ended trial -> when it ended (monotonic)
        self._restored = False
        self._log = EventLog(self.experiment, self.ledger.logged)
        self._held = 0  # events the last snapshot holds (counted since this process began)
        self._since = 0  # events logged since it
        self._snapshot_at = time.monotonic()
        self._snapshot_s = 0.0  # how long the last snapshot took
        self._seen = 0  # Tune's trials list only grows: those before this index are recorded

    @override
    def setup(
        self, stop: Any = None, num_samples: int | None = None,
        total_num_samples: int | None = None, **info: Any,
    ) -> None:
        # Tune unpickles its callbacks on restore: read the history from storage, not the pickle.
        ledger = Ledger.load_if_any(self.experiment)
        if ledger is not None:
            if self._new_spec:  # this run's: an extension asks for more trials, say
                ledger.spec = self.ledger.spec
            self.ledger = ledger
            self._fresh_state()
            self._held = sum(1 + len(t.history) for t in self.ledger.trials.values())
            self._restored = True
            for trial_id, record in self.ledger.trials.items():
                if record.status in ("stopped", "errored"):
                    self._to_tidy.setdefault(trial_id, 0.0)  # ended before the restart
        self._write(snapshot=True)

    @override
    def on_step_begin(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        if self._restored:
            # The first step of a resume, before Tune adds or starts any trial: ``trials`` are
            # exactly those it restored. Written before any trial reads the record.
            self._restored = False
            for event in self.ledger.reconcile({t.trial_id for t in trials}, self.added_by):
                self._emit(event)
            self._seen = len(trials)
            self._write(snapshot=True)

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks into its experiment state: the records stay in storage.
        return {"experiment": self.experiment, "ledger": Ledger(self.ledger.spec),
                "added_by": self.added_by, "stopped_by": self.stopped_by}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.experiment, self.ledger = state["experiment"], state["ledger"]
        self.added_by, self.stopped_by = state["added_by"], state["stopped_by"]
        self._new_spec = False
        self._fresh_state()

    def _emit(self, event: Event) -> None:
        self.ledger.apply(event)
        self._log.add(event)
        self._since += 1

    def _write(self, snapshot: bool = False, flush: bool = True) -> None:
        """Flushes the buffered events (if ``flush``, or when they are due), and writes the
        snapshot if ``snapshot`` or when one is due."""
        snapshot = snapshot or self._since >= max(
            SNAPSHOT_MIN_EVENTS, SNAPSHOT_GROWTH * self._held) or bool(
            self._since and time.monotonic() - self._snapshot_at >= max(
                SNAPSHOT_MAX_AGE_S, self._snapshot_s / SNAPSHOT_SHARE))
        try:
            if flush or snapshot or self._log.due(FLUSH_S):
                self._log.flush()
            if snapshot:
                started = time.monotonic()
                self.ledger.logged = self._log.last
                self.ledger.save(self.experiment)
                self._log.compact(self.ledger.logged)
                self._held, self._since = self._held + self._since, 0
                self._snapshot_at = time.monotonic()
                self._snapshot_s = self._snapshot_at - started
        except OSError as error:
            if is_storage_full(error):  # what was written stays whole (atomic writes)
                raise StorageFullError(str(self.experiment)) from error
            raise

    def _record(self, trial: Trial) -> TrialRecord:
        continues = trial.config.get(CONTINUES_KEY)
        if continues:  # trained longer: the Tune trial carries the earlier trial's record on
            return self.ledger.trials[continues["trial"]]
        record = self.ledger.trials.get(trial.trial_id)
        if record is None:
            config = dict(trial.config)
            self._emit(self.ledger.adoption(trial.trial_id, config)
                       or events.added(trial.trial_id, config, self.added_by))
            record = self.ledger.trials[trial.trial_id]
        if LINEAGE_KEY in trial.config:  # population-based training changed its config
            exploit = trial.config[LINEAGE_KEY]
            if exploit["generation"] > len(record.lineage):
                self._emit(events.exploited(trial.trial_id, exploit, dict(trial.config)))
        return record

    def _measure(self, record: TrialRecord) -> None:
        self._emit(events.usage(record.trial_id, *checkpoint_usage(self.experiment, record.trial_id)))

    def _tidy(self, older_than_s: float) -> None:
        """Removes checkpoints that ended trials' workers persisted after Tune stopped them."""
        now = time.monotonic()
        due = [i for i, ended in self._to_tidy.items() if now - ended >= older_than_s]
        for trial_id in due:
            del self._to_tidy[trial_id]
            record = self.ledger.trials.get(trial_id)
            if record is None:  # handed to another trial id by a resume (Ledger.adoption)
                continue
            reported = {Location.parse(e.checkpoint).parent.name
                        for e in record.history if e.checkpoint}
            if remove_stray_checkpoints(self.experiment, trial_id, reported):
                self._measure(record)

    @override
    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        # Ray kills a stopped trial's workers within moments; tidy after they are surely gone.
        self._tidy(older_than_s=TIDY_AFTER_S)
        for trial in trials[self._seen:]:  # created since the last step: pending
            self._record(trial)
        self._seen = len(trials)
        self._write(flush=False)

    @override
    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        record = self._record(trial)
        if trial.config.get(CONTINUES_KEY) and record.status in FINISHED:
            self._emit(events.status(record.trial_id, "running"))  # trained on
        self._mark_running(record)
        self._write(flush=False)

    def _mark_running(self, record: TrialRecord) -> None:
        # A finished trial started again by a resume only hands Tune its result, and reads its
        # status to know that: it stays finished.
        if record.status not in (*FINISHED, "running"):
            self._emit(events.status(record.trial_id, "running"))

    @override
    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        record = self._record(trial)
        self._mark_running(record)
        not_metrics = {*auto_result_keys(), *_NOT_METRICS}
        metrics = {
            k: float(v) for k, v in result.items()
            if k not in not_metrics and is_finite_number(v)
        }
        seconds: Any = result.get(TIME_THIS_ITER_S)
        entry = EpochRecord(
            epoch=int(result["epoch"]), metrics=metrics,
            checkpoint=self._checkpoint(trial.trial_id, result),
            seconds=float(seconds) if is_finite_number(seconds) else None,
            reported_at=time.time(),
        )
        # A resumed run reports its checkpoint's epoch again, without the checkpoint: keep the
        # newest metrics and the checkpoint already known.
        previous = next((e for e in reversed(record.history) if e.epoch == entry.epoch), None)
        if previous is not None and record.status in FINISHED:
            return  # a finished trial handing a resumed Tune its last result: nothing new
        if previous is not None and entry.checkpoint is None:
            entry.checkpoint = previous.checkpoint
        if previous is not None and previous.seconds is not None:
            # The time to restart and report the epoch again was spent too.
            entry.seconds = previous.seconds + (entry.seconds or 0.0)
        self._emit(events.epoch(record.trial_id, entry))
        ran = {k.removeprefix(RAN_PREFIX): v for k, v in result.items()
               if k.startswith(RAN_PREFIX) and isinstance(v, str)}
        if ran and ran != record.ran:
            self._emit(events.ran(record.trial_id, ran))
        self._write(flush=False)

    def _checkpoint(self, trial_id: str, result: dict[str, Any]) -> str | None:
        """The Lightning checkpoint a result came with: its Train run's (named by path), or,
        from an inline trial, Tune's (named by directory, in the trial's own); for a report
        sent again by a resumed run, the checkpoint it was restored from (named by path)."""
        train_dir = result.get(CHECKPOINT_PATH_KEY) or result.get(RESENT_CHECKPOINT_KEY)
        if train_dir:
            return (self.experiment.from_fs_path(train_dir) / CHECKPOINT_NAME).uri
        tune_dir: str | None = result.get(CHECKPOINT_DIR_NAME)
        if tune_dir:
            return (trial_path(self.experiment, trial_id) / tune_dir / CHECKPOINT_NAME).uri
        return None

    def _end(self, record: TrialRecord, status: str, error: str | None = None,
             by: str | None = None) -> None:
        self._emit(events.status(record.trial_id, status, error, by))
        self._measure(record)
        # Flushed when due, like every event: at 10,000 short trials, a segment (an upload, in
        # the cloud) per trial end would be one every few hundred milliseconds.
        self._write(flush=False)
        if status != "completed":
            self._to_tidy[record.trial_id] = time.monotonic()

    @override
    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        record = self._record(trial)
        status = end_status(record.epochs, self.ledger.spec.scheduler.max_epochs)
        by = self.stopped_by(trial.trial_id) if self.stopped_by and status == "stopped" else None
        self._end(record, status, by=by)

    @override
    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        error = trial_error(trial)
        if error is not None and is_storage_full(error):
            # Not the trial's fault: stop the sweep here, before Tune saves this trial as
            # failed, so that `resume` continues it from its last checkpoint.
            raise StorageFullError(str(self.experiment)) from error
        self._end(self._record(trial), "errored", describe_error(error))

    @override
    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        if self._to_tidy:  # give the last stopped trial's workers a moment to be gone
            time.sleep(max(0.0, LAST_TIDY_WAIT_S - (time.monotonic() - max(self._to_tidy.values()))))
        self._tidy(older_than_s=0)
        self._write(snapshot=True)
