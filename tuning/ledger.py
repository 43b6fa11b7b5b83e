"""The leaderboard file: every trial's status, config and per-epoch metrics, kept current.

A Tune callback on the driver rewrites ``<experiment>/lightsweep/leaderboard.json`` (atomically)
as trials start, report and end, so ``leaderboard`` and ``best`` work from the experiment
directory alone: while a sweep runs, after it ends, and after a crash.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import cloudpickle
from ray.tune import Callback
from ray.tune.experiment import Trial
from ray.tune.integration.ray_train import CHECKPOINT_PATH_KEY
from ray.tune.result import AUTO_RESULT_KEYS, TIME_THIS_ITER_S

from tuning.errors import StorageFullError, SweepError, is_storage_full, ray_wrapped
from tuning.layout import (
    CHECKPOINT_NAME,
    LEDGER_FILE,
    checkpoint_usage,
    remove_stray_checkpoints,
)
from tuning.location import Location
from tuning.spec import SweepSpec

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
TIDY_AFTER_S = 10.0
LAST_TIDY_WAIT_S = 3.0
STATUSES = ("pending", "running", "completed", "stopped", "errored")
_NOT_METRICS = {*AUTO_RESULT_KEYS, "epoch", "trial_id", "experiment_tag", "done"}


@dataclass
class EpochRecord:
    """One epoch's report: all scalar metrics, and the checkpoint file taken after it."""

    epoch: int
    metrics: dict[str, float]
    checkpoint: str | None = None
    # Wall seconds since the run's previous report (the first epoch of a run includes its
    # start-up: a trial's start-up is part of what it costs).
    seconds: float | None = None
    # When the driver received the report (Unix seconds): orders epochs across trials.
    reported_at: float | None = None


@dataclass
class TrialRecord:
    """One trial as the leaderboard shows it."""

    trial_id: str
    status: str = "pending"
    config: dict[str, Any] = field(default_factory=dict)
    history: list[EpochRecord] = field(default_factory=list)
    error: str | None = None
    checkpoints: int = 0  # kept on disk now (``checkpoints.num_to_keep`` at most)
    checkpoint_bytes: int = 0
    # Finished after Ray Tune last saved its state, so a restored Tune does not know it: its
    # configuration, proposed again, takes this result instead of training again.
    orphan: bool = False

    @property
    def epochs(self) -> int:
        """Epochs completed (the highest epoch reported)."""
        return max((e.epoch for e in self.history), default=0)

    @property
    def seconds(self) -> float:
        """Wall seconds the trial's reported epochs took, start-up included."""
        return sum(e.seconds or 0.0 for e in self.history)

    @property
    def worker_seconds(self) -> float:
        """:attr:`seconds` times the trial's workers: what it held of the cluster."""
        return sum((e.seconds or 0.0) * e.metrics.get("world_size", 1.0) for e in self.history)

    def epoch_worker_seconds(self) -> float | None:
        """Worker-seconds of one more epoch: the mean of its epochs after the first (which
        carries start-up), None with fewer than two epochs timed."""
        later = [(e.seconds or 0.0) * e.metrics.get("world_size", 1.0)
                 for e in self.history[1:] if e.seconds is not None]
        return sum(later) / len(later) if later else None

    def ranked_epochs(self, metric: str, mode: str) -> list[EpochRecord]:
        """Epochs that reported ``metric``, best first."""
        scored = [e for e in self.history if is_finite_number(e.metrics.get(metric))]
        return sorted(scored, key=lambda e: e.metrics[metric], reverse=mode == "max")

    def best_epoch(self, metric: str, mode: str) -> EpochRecord | None:
        ranked = self.ranked_epochs(metric, mode)
        return ranked[0] if ranked else None

    def to_dict(self, metric: str, mode: str) -> dict[str, Any]:
        best = self.best_epoch(metric, mode)
        return {
            "trial_id": self.trial_id,
            "status": self.status,
            "epochs": self.epochs,
            "value": best.metrics[metric] if best else None,
            "config": self.config,
            "error": self.error,
            "checkpoints": self.checkpoints,
            "checkpoint_bytes": self.checkpoint_bytes,
            "seconds": self.seconds,
            "worker_seconds": self.worker_seconds,
        }


def is_finite_number(value: Any) -> bool:
    """Whether ``value`` is a real, finite number (not a bool, NaN or infinity)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def end_status(epochs: int, max_epochs: int) -> str:
    """How a trial that ended without error ended: ``completed``, or ``stopped`` early."""
    return "completed" if epochs >= max_epochs else "stopped"


@dataclass(frozen=True)
class Cost:
    """What a sweep spent, and what early stopping saved against running every trial to
    ``max_epochs``.

    Attributes:
        epochs: Epochs trained, all trials together.
        worker_seconds: Wall seconds times workers, all trials together, start-up included.
        epochs_saved: Epochs that stopped trials did not train.
        worker_seconds_saved: Those epochs' worker-seconds, at each trial's own epoch cost
            (its epochs after the first; the sweep's median where a trial ran one epoch).
    """

    epochs: int
    worker_seconds: float
    epochs_saved: int
    worker_seconds_saved: float


@dataclass
class Ledger:
    """The content of ``leaderboard.json``."""

    spec: SweepSpec
    trials: dict[str, TrialRecord] = field(default_factory=dict)

    def ranked(self) -> list[TrialRecord]:
        """All trials, best value first; trials without a value last, in start order."""
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
        return [t.to_dict(self.spec.metric, self.spec.mode) for t in self.ranked()]

    def reconcile(self, known: set[str]) -> None:
        """Settles, before a resume, the trials that the restored Ray Tune does not know.

        Ray Tune restores the trials of its last saved state. One created after it and still
        running is lost (its configuration, proposed again, runs again); one that also finished
        becomes an orphan, whose result the re-proposed configuration takes (:meth:`adopt`).
        """
        for trial_id, record in list(self.trials.items()):
            if trial_id in known:
                continue
            if record.status in FINISHED:
                record.orphan = True
                continue
            del self.trials[trial_id]
            if record.history:
                logger.warning(
                    "trial %s started after Ray Tune last saved its state and cannot be resumed "
                    "(%d epochs lost); its configuration runs again as a new trial",
                    trial_id, record.epochs,
                )

    def orphan_for(self, config: dict[str, Any]) -> TrialRecord | None:
        """A finished orphan trial of exactly this configuration, if any."""
        return next((r for r in self.trials.values() if r.orphan and r.config == config), None)

    def adopt(self, trial_id: str, config: dict[str, Any]) -> TrialRecord | None:
        """Hands an orphan of the same configuration over to new trial ``trial_id``."""
        record = self.orphan_for(config)
        if record is None:
            return None
        del self.trials[record.trial_id]
        logger.info("trial %s: configuration finished before the restart as trial %s; its result "
                    "is kept, not trained again", trial_id, record.trial_id)
        record.trial_id, record.orphan = trial_id, False
        self.trials[trial_id] = record
        return record

    def save(self, experiment: Location) -> None:
        data = {
            "format": FORMAT_VERSION,
            "sweep": self.spec.model_dump(mode="json"),
            "trials": [asdict(t) for t in self.trials.values()],
        }
        (experiment / LEDGER_FILE).write_text(json.dumps(data, indent=1))

    @classmethod
    def load(cls, experiment: str | Location) -> Ledger:
        """Reads an experiment's leaderboard, from a directory or a cloud URI.

        Raises:
            SweepError: If the directory holds no lightsweep experiment, or cannot be read.
        """
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
        trials = {}
        for raw in data["trials"]:
            history = [EpochRecord(**e) for e in raw.pop("history")]
            trials[raw["trial_id"]] = TrialRecord(**raw, history=history)
        return cls(SweepSpec.model_validate(data["sweep"]), trials)


FINISHED = ("completed", "stopped")


def finished_trial(
    experiment: Location, trial_id: str, config: dict[str, Any]
) -> TrialRecord | None:
    """The trial's record if the leaderboard says it already finished (completed or stopped),
    under its own id or as an orphan of the same configuration (see :meth:`Ledger.reconcile`)."""
    ledger = _ledger_if_any(experiment)
    if ledger is None:
        return None
    record = ledger.trials.get(trial_id) or ledger.orphan_for(config)
    return record if record is not None and record.status in FINISHED else None


def recorded_epochs(experiment: Location, trial_id: str) -> int:
    """The last epoch of trial ``trial_id`` that the leaderboard holds (0: none)."""
    ledger = _ledger_if_any(experiment)
    record = ledger.trials.get(trial_id) if ledger is not None else None
    return record.epochs if record is not None else 0


def _ledger_if_any(experiment: Location) -> Ledger | None:
    """The experiment's leaderboard, or None before the sweep's driver first wrote it."""
    return Ledger.load(experiment) if (experiment / LEDGER_FILE).is_file() else None


def trial_error(trial: Trial) -> BaseException | None:
    """The exception a trial failed with.

    When Tune's error callbacks run, the pickled error is in the trial's local directory and not
    yet synced to storage (where ``Trial.get_pickled_error`` looks), so look there first.
    """
    local = trial.pickled_error_file
    if local and os.path.isfile(local):
        with open(local, "rb") as f:
            return cloudpickle.load(f)
    return trial.get_pickled_error()


def describe_error(error: BaseException | None) -> str:
    """``"ClassName: message"`` of the root cause of a trial's failure.

    Unwraps Ray's wrappers (task errors, Train's worker-group errors) down to the exception the
    user's code raised.
    """
    seen = 0
    while error is not None and seen < 10:
        seen += 1
        wrapped = ray_wrapped(error)
        if not wrapped:
            break
        error = wrapped[0]
    if error is None:
        return "unknown error"
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0] if message else ''}".rstrip(": ")


class LedgerCallback(Callback):
    """Keeps ``leaderboard.json`` current from Tune's trial events (runs on the driver)."""

    def __init__(self, experiment: Location, spec: SweepSpec) -> None:
        self.experiment = experiment
        self.ledger = Ledger(spec)
        self._to_tidy: dict[str, float] = {}  # ended trial -> when it ended (monotonic)
        self._restored = False

    def setup(
        self, stop: Any = None, num_samples: int | None = None,
        total_num_samples: int | None = None, **info: Any,
    ) -> None:
        # Tune unpickles its callbacks on restore: read the history from the file, not the pickle.
        if not (self.experiment / LEDGER_FILE).is_file():
            self._save()
            return
        self.ledger = Ledger.load(self.experiment)
        self._restored = True
        for trial_id, record in self.ledger.trials.items():
            if record.status in ("stopped", "errored"):
                self._to_tidy.setdefault(trial_id, 0.0)  # ended before the restart

    def on_step_begin(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        if self._restored:
            # The first step of a resume, before Tune adds or starts any trial: ``trials`` are
            # exactly those it restored. Saved before any trial reads the leaderboard.
            self._restored = False
            self.ledger.reconcile({t.trial_id for t in trials})
            self._save()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "ledger": Ledger(self.ledger.spec), "_to_tidy": {},
                "_restored": False}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "experiment_dir" in state:  # pickled by a lightsweep before cloud storage
            state["experiment"] = Location.parse(state.pop("experiment_dir"))
        self.__dict__.update(state)

    def _record(self, trial: Trial) -> TrialRecord:
        record = self.ledger.trials.get(trial.trial_id)
        if record is None:
            record = self.ledger.adopt(trial.trial_id, dict(trial.config))
        if record is None:
            record = TrialRecord(trial.trial_id, config=dict(trial.config))
            self.ledger.trials[trial.trial_id] = record
        return record

    def _save(self) -> None:
        try:
            self.ledger.save(self.experiment)
        except OSError as error:
            if is_storage_full(error):  # the previous leaderboard stays whole (atomic write)
                raise StorageFullError(str(self.experiment)) from error
            raise

    def _measure(self, record: TrialRecord) -> None:
        record.checkpoints, record.checkpoint_bytes = checkpoint_usage(
            self.experiment, record.trial_id
        )

    def _tidy(self, older_than_s: float) -> bool:
        """Removes checkpoints that ended trials' workers persisted after Tune stopped them."""
        now = time.monotonic()
        due = [i for i, ended in self._to_tidy.items() if now - ended >= older_than_s]
        for trial_id in due:
            del self._to_tidy[trial_id]
            record = self.ledger.trials.get(trial_id)
            if record is None:  # handed to another trial id by a resume (Ledger.adopt)
                continue
            reported = {Location.parse(e.checkpoint).parent.name
                        for e in record.history if e.checkpoint}
            if remove_stray_checkpoints(self.experiment, trial_id, reported):
                self._measure(record)
        return bool(due)

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        # Ray kills a stopped trial's workers within moments; tidy after they are surely gone.
        changed = self._tidy(older_than_s=TIDY_AFTER_S)
        new = [t for t in trials if t.trial_id not in self.ledger.trials]
        for trial in new:
            self._record(trial)
        if new or changed:
            self._save()

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._mark_running(self._record(trial))
        self._save()

    @staticmethod
    def _mark_running(record: TrialRecord) -> None:
        # A finished trial started again by a resume only hands Tune its result, and reads its
        # status to know that: it stays finished.
        if record.status not in FINISHED:
            record.status = "running"

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        record = self._record(trial)
        self._mark_running(record)
        metrics = {
            k: float(v) for k, v in result.items() if k not in _NOT_METRICS and is_finite_number(v)
        }
        ckpt_dir = result.get(CHECKPOINT_PATH_KEY)
        seconds: Any = result.get(TIME_THIS_ITER_S)
        entry = EpochRecord(
            epoch=int(result["epoch"]), metrics=metrics,
            checkpoint=(self.experiment.from_fs_path(ckpt_dir) / CHECKPOINT_NAME).uri
            if ckpt_dir else None,
            seconds=float(seconds) if is_finite_number(seconds) else None,
            reported_at=time.time(),
        )
        # A resumed run reports its checkpoint's epoch again, without the checkpoint: keep the
        # newest metrics and the checkpoint already known.
        previous = next((e for e in record.history if e.epoch == entry.epoch), None)
        if previous is not None and record.status in FINISHED:
            return  # a finished trial handing a resumed Tune its last result: nothing new
        if previous is not None and entry.checkpoint is None:
            entry.checkpoint = previous.checkpoint
        if previous is not None and previous.seconds is not None:
            # The time to restart and report the epoch again was spent too.
            entry.seconds = previous.seconds + (entry.seconds or 0.0)
        record.history = sorted(
            [e for e in record.history if e.epoch != entry.epoch] + [entry], key=lambda e: e.epoch
        )
        self._measure(record)
        self._save()

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        record = self._record(trial)
        record.status = end_status(record.epochs, self.ledger.spec.scheduler.max_epochs)
        self._measure(record)
        self._save()
        if record.status == "stopped":
            self._to_tidy[trial.trial_id] = time.monotonic()

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        error = trial_error(trial)
        if error is not None and is_storage_full(error):
            # Not the trial's fault: stop the sweep here, before Tune saves this trial as
            # failed, so that `resume` continues it from its last checkpoint.
            raise StorageFullError(str(self.experiment)) from error
        record = self._record(trial)
        record.status = "errored"
        record.error = describe_error(error)
        self._measure(record)
        self._save()
        self._to_tidy[trial.trial_id] = time.monotonic()

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        if self._to_tidy:  # give the last stopped trial's workers a moment to be gone
            time.sleep(max(0.0, LAST_TIDY_WAIT_S - (time.monotonic() - max(self._to_tidy.values()))))
        if self._tidy(older_than_s=0):
            self._save()
