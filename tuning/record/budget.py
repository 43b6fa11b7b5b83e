"""What a sweep's budget counts, read from its record (no Ray: readers say it too).

Only the time trials actually run counts: each epoch a trial reports adds its wall seconds
(start-up included, for its first) times its workers to the worker-hours, and its span of time
to the wall-hours, which count the time any trial ran (the union of those spans), so the time a
killed sweep waited before ``resume`` never counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from tuning.config.spec import SweepSpec
from tuning.record.records import TrialRecord

HOUR_S = 3600.0


def _union(spans: Iterable[tuple[float, float]]) -> float:
    """The seconds that the ``(start, end)`` spans cover, overlaps counted once."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


@dataclass
class Spent:
    """What a sweep has spent: worker-seconds, and the spans of time its trials' epochs ran."""

    worker_s: float = 0.0
    spans: list[tuple[float, float]] = field(default_factory=list)
    epochs: int = 0

    @property
    def wall_s(self) -> float:
        return _union(self.spans)

    def add(self, ended_at: float, seconds: float, workers: int) -> None:
        """One epoch of ``seconds`` that ended at ``ended_at`` (Unix time) on ``workers``."""
        self.worker_s += seconds * workers
        self.spans.append((ended_at - seconds, ended_at))
        self.epochs += 1

    @classmethod
    def of_record(cls, trials: Iterable[TrialRecord], workers: int) -> Spent:
        """What the recorded epochs of ``trials`` spent (``workers`` per trial)."""
        spent = cls()
        for trial in trials:
            for epoch in trial.history:
                if epoch.seconds is not None and epoch.reported_at is not None:
                    spent.add(epoch.reported_at, epoch.seconds, workers)
        return spent


@dataclass(frozen=True)
class Budget:
    """A sweep's limits (None: none) and what counts against them."""

    worker_hours: float | None = None
    wall_hours: float | None = None
    gpu: bool = False  # worker-hours of GPU workers: GPU-hours

    @classmethod
    def of(cls, spec: SweepSpec) -> Budget:
        return cls(spec.budget.worker_hours, spec.budget.wall_hours,
                   spec.resources.gpus_per_worker > 0)

    @property
    def limited(self) -> bool:
        return self.worker_hours is not None or self.wall_hours is not None

    def exhausted(self, spent: Spent) -> bool:
        """Whether ``spent`` reached a limit."""
        return ((self.worker_hours is not None and spent.worker_s >= self.worker_hours * HOUR_S)
                or (self.wall_hours is not None and spent.wall_s >= self.wall_hours * HOUR_S))

    def affords(self, spent: Spent, epochs: int) -> bool:
        """Whether what is left pays for ``epochs`` more epochs of one trial at the mean cost of
        those spent so far (any number, before the first)."""
        if self.exhausted(spent):
            return False
        if not spent.epochs:
            return True
        worker_per_epoch = spent.worker_s / spent.epochs
        wall_per_epoch = sum(end - start for start, end in spent.spans) / spent.epochs
        return ((self.worker_hours is None
                 or self.worker_hours * HOUR_S - spent.worker_s >= epochs * worker_per_epoch)
                and (self.wall_hours is None
                     or self.wall_hours * HOUR_S - spent.wall_s >= epochs * wall_per_epoch))

    def summary(self, spent: Spent) -> str:
        """``spent / budget`` of each limit, as the sweep's end, the leaderboard and the report
        say it."""
        unit = "GPU-hours" if self.gpu else "worker-hours"
        parts = [f"{spent.worker_s / HOUR_S:.3g} of {self.worker_hours:g} {unit}"
                 if self.worker_hours is not None else f"{spent.worker_s / HOUR_S:.3g} {unit}"]
        parts.append(f"{spent.wall_s / HOUR_S:.3g} of {self.wall_hours:g} wall-hours"
                     if self.wall_hours is not None else f"{spent.wall_s / HOUR_S:.3g} wall-hours")
        return ("budget spent: " if self.exhausted(spent) else "budget: ") + ", ".join(parts)




def budget_line(spec: SweepSpec, trials: Iterable[TrialRecord]) -> str | None:
    """What ``trials`` spent of ``spec``'s budget, as a line (None: the sweep has none)."""
    budget = Budget.of(spec)
    if not budget.limited:
        return None
    return budget.summary(Spent.of_record(trials, spec.resources.workers_per_trial))


def budget_spent(spec: SweepSpec, trials: Iterable[TrialRecord]) -> bool:
    """Whether ``trials`` spent ``spec``'s budget (False: it has none)."""
    return Budget.of(spec).exhausted(Spent.of_record(trials, spec.resources.workers_per_trial))
