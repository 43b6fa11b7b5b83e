"""What the record holds of each trial: its status, configuration and per-epoch metrics."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from tuning.record.lineage import searched_values

STATUSES = ("pending", "running", "completed", "stopped", "errored")
FINISHED = ("completed", "stopped")


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
    # Population-based training's exploits of this trial, in order (tuning.record.lineage.Exploit).
    lineage: list[dict[str, Any]] = field(default_factory=list)
    # What the trial's workers ran on, as they reported it (RAN_PREFIX keys of a result without
    # the prefix): {"precision": "bf16-mixed", "device": "NVIDIA H100 80GB HBM3"}.
    ran: dict[str, str] = field(default_factory=dict)
    # Which run of the sweep added the trial: 0 its launch, k its k-th extension
    # (``resume --num-samples``).
    added_by: int = 0
    # What stopped a stopped trial, when not the scheduler: "budget" (the sweep's was spent).
    stopped_by: str | None = None

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

    def last_scored_epoch(self, metrics: list[str]) -> EpochRecord | None:
        """The last epoch that reported every one of ``metrics``: a trial's point in a sweep of
        several objectives (the model it ended with, whose checkpoint is always kept)."""
        for entry in reversed(self.history):
            if all(is_finite_number(entry.metrics.get(m)) for m in metrics):
                return entry
        return None

    def as_data(self) -> dict[str, Any]:
        """The record as the snapshot stores it (``asdict``'s deep copies cost too much there)."""
        return {
            "trial_id": self.trial_id, "status": self.status, "config": self.config,
            "history": [vars(e) for e in self.history], "error": self.error,
            "checkpoints": self.checkpoints, "checkpoint_bytes": self.checkpoint_bytes,
            "orphan": self.orphan, "lineage": self.lineage, "ran": self.ran,
            "added_by": self.added_by, "stopped_by": self.stopped_by,
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> TrialRecord:
        """The inverse of :meth:`as_data`."""
        history = [EpochRecord(**e) for e in data["history"]]
        return cls(**{**data, "history": history})

    def schedule(self) -> list[dict[str, Any]]:
        """The searched values the trial trained with, from which epoch on: one entry, its
        config, unless population-based training changed them (then one more per exploit,
        with the trial whose checkpoint it continued from)."""
        if not self.lineage:
            return [{"from_epoch": 1, "values": searched_values(self.config)}]
        first = self.lineage[0]
        entries = [{"from_epoch": 1, "values": {**searched_values(self.config), **first["before"]}}]
        for exploit in self.lineage:
            entries.append({"from_epoch": exploit["epoch"] + 1, "donor": exploit["donor"],
                            "values": exploit["values"]})
        return entries

    def to_dict(self, metric: str, mode: str,
                pareto: tuple[list[str], list[str], int | None] | None = None) -> dict[str, Any]:
        """The leaderboard's row: ``value`` is ``metric`` at the trial's best epoch; with
        ``pareto`` (the objectives' metrics, the metrics to show, the trial's front), at its
        last scored epoch, with the shown metrics' values there (``values``) and the front."""
        if pareto is None:
            best = self.best_epoch(metric, mode)
            extra: dict[str, Any] = {}
        else:
            metrics, shown, front = pareto
            best = self.last_scored_epoch(metrics)
            extra = {"front": front, "epoch": best.epoch if best else None,
                     "values": {m: best.metrics.get(m) for m in shown} if best else None}
        return {
            "trial_id": self.trial_id,
            "status": self.status,
            "epochs": self.epochs,
            "value": best.metrics[metric] if best else None,
            **extra,
            "config": searched_values(self.config),
            "error": self.error,
            "checkpoints": self.checkpoints,
            "checkpoint_bytes": self.checkpoint_bytes,
            "seconds": self.seconds,
            "worker_seconds": self.worker_seconds,
            "ran": self.ran,
            "added_by": self.added_by,
            "stopped_by": self.stopped_by,
            **({"schedule": self.schedule()} if self.lineage else {}),
        }


def is_finite_number(value: Any) -> TypeGuard[float]:
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
