"""A sweep's budget (``budget: {worker_hours: H, wall_hours: W}``), held to by Ray Tune.

What counts is :mod:`tuning.record.budget`'s: what earlier runs of the sweep spent is read from
its record when the driver starts; this run's epochs are added as their results reach the
scheduler.

Once the budget is spent, each running trial ends at its next epoch end, stopped by the budget
(the record says so; Optuna hears it PRUNED), and no trial starts unless what is left gives it
at least its grace period (``scheduler.grace_period`` epochs at the sweep's mean epoch cost).
Ray Tune's public extension points hold to it: :class:`BudgetGate` wraps the sweep's scheduler
(it stops trials), :class:`BudgetSearcher` its searcher (Tune starts every trial it creates,
so none is created that the budget cannot pay for), and :class:`BudgetStopper` ends the sweep
once nothing runs and nothing can start.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ray.tune.schedulers import TrialScheduler
from ray.tune.search import Searcher
from ray.tune.stopper import Stopper
from typing_extensions import override

from tuning._internals.tune_results import TIME_THIS_ITER_S
from tuning.config.spec import SweepSpec
from tuning.record import Ledger, is_finite_number
from tuning.record.budget import Budget, Spent
from tuning.record.location import Location


@dataclass
class Meter:
    """The sweep's budget and what it spent, in its driver's process (Tune pickles its scheduler
    and stopper with the experiment; a resumed driver meters anew from the record)."""

    budget: Budget
    spent: Spent
    workers: int
    grace: int
    stopped: set[str] = field(default_factory=set)  # trial ids the budget stopped
    live: set[str] = field(default_factory=set)  # trials Tune added that have not ended

    def add(self, result: dict[str, Any]) -> None:
        seconds = result.get(TIME_THIS_ITER_S)
        if is_finite_number(seconds):
            self.spent.add(time.time(), float(seconds), self.workers)

    def can_start(self) -> bool:
        return self.budget.affords(self.spent, self.grace)


_METER: Meter | None = None


def start_meter(spec: SweepSpec, experiment: Location) -> Meter | None:
    """Meters this driver's run of ``spec`` from what the record of ``experiment`` says was
    spent (None: no budget)."""
    global _METER  # the driver's one sweep at a time; Tune's objects find it here
    budget = Budget.of(spec)
    _METER = None
    if budget.limited:
        ledger = Ledger.load_if_any(experiment)
        trials = ledger.trials.values() if ledger is not None else ()
        workers = spec.resources.workers_per_trial
        _METER = Meter(budget, Spent.of_record(trials, workers), workers,
                       spec.scheduler.grace_period)
    return _METER


def meter() -> Meter | None:
    """The running sweep's meter, if it has a budget."""
    return _METER


def stopped_by(trial_id: str) -> str | None:
    """``"budget"`` for a trial the running sweep's budget stopped."""
    return "budget" if _METER is not None and trial_id in _METER.stopped else None


class BudgetGate(TrialScheduler):
    """The sweep's scheduler, with the budget held to: a trial whose epoch ends once the budget
    is spent stops there, and no trial starts that what is left cannot give its grace period."""

    def __init__(self, inner: TrialScheduler) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.inner = inner

    @property
    def metric(self) -> Any:
        return self.inner.metric

    @property
    def supports_buffered_results(self) -> bool:
        return bool(self.inner.supports_buffered_results)

    @override
    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return bool(self.inner.set_search_properties(metric, mode, **spec))

    @override
    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        found = meter()
        # A resumed Tune adds the trials it restores, the ended ones too (as Tune counts live).
        if found is not None and trial.status not in ("TERMINATED", "ERROR"):
            found.live.add(trial.trial_id)
        self.inner.on_trial_add(tune_controller, trial)

    @override
    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        self._ended(trial)
        self.inner.on_trial_error(tune_controller, trial)

    @override
    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        decision = self.inner.on_trial_result(tune_controller, trial, result)
        found = meter()
        if found is None:
            return decision
        found.add(result)
        if decision == TrialScheduler.CONTINUE and found.budget.exhausted(found.spent):
            found.stopped.add(trial.trial_id)
            return TrialScheduler.STOP
        return decision

    @override
    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:
        self._ended(trial)
        self.inner.on_trial_complete(tune_controller, trial, result)

    @override
    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self._ended(trial)
        self.inner.on_trial_remove(tune_controller, trial)

    @override
    def choose_trial_to_run(self, tune_controller: Any) -> Any:
        return self.inner.choose_trial_to_run(tune_controller)

    @override
    def debug_string(self) -> str:
        return str(self.inner.debug_string())

    @override
    def save(self, checkpoint_path: str) -> None:
        self.inner.save(checkpoint_path)

    @override
    def restore(self, checkpoint_path: str) -> None:
        self.inner.restore(checkpoint_path)

    @staticmethod
    def _ended(trial: Any) -> None:
        found = meter()
        if found is not None:
            found.live.discard(trial.trial_id)


class BudgetSearcher(Searcher):
    """The sweep's searcher, proposing nothing (for now) while what is left of the budget
    cannot give a new trial its grace period."""

    def __init__(self, inner: Searcher) -> None:
        self.inner = inner
        super().__init__(metric=inner.metric, mode=inner.mode)

    @override
    def set_search_properties(self, metric: str | None, mode: str | None,
                              config: dict[str, Any], **spec: Any) -> bool:
        return bool(self.inner.set_search_properties(metric, mode, config, **spec))

    @override
    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return bool(self.inner.set_max_concurrency(max_concurrent))

    @override
    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        found = meter()
        if found is not None and not found.can_start():
            return None  # Tune asks again later; the stopper ends the sweep once nothing runs
        suggestion: dict[str, Any] | None = self.inner.suggest(trial_id)
        return suggestion

    @override
    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self.inner.on_trial_result(trial_id, result)

    @override
    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:
        self.inner.on_trial_complete(trial_id, result=result, error=error)

    @override
    def save(self, checkpoint_path: str) -> None:
        self.inner.save(checkpoint_path)  # the searcher's own state, as Tune saves it unwrapped

    @override
    def restore(self, checkpoint_path: str) -> None:
        self.inner.restore(checkpoint_path)


class BudgetStopper(Stopper):
    """Ends the sweep once its budget lets no trial start and none is left to end (trials it
    never created stay for a ``resume`` with a raised budget)."""

    @override
    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    @override
    def stop_all(self) -> bool:
        found = meter()
        return found is not None and not found.live and not found.can_start()
