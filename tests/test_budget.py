"""A sweep's budget: what counts (only time trials ran), when trials stop and when none starts."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from tuning.driver import budget as driver_budget
from tuning.driver.budget import BudgetGate, BudgetSearcher, BudgetStopper, Meter
from tuning.record import EpochRecord, TrialRecord
from tuning.record.budget import Budget, Spent, _union

HOUR = 3600.0


def test_wall_time_counts_the_spans_trials_ran_once_and_never_the_time_between() -> None:
    assert _union([(0, 10), (5, 15)]) == 15  # two trials at once: counted once
    # A sweep killed at 20 and resumed at 1000: the wait is not spent.
    assert _union([(0, 10), (10, 20), (1000, 1010)]) == 30
    assert _union([]) == 0


def test_what_the_record_says_was_spent() -> None:
    trials = [TrialRecord("a", history=[EpochRecord(1, {}, seconds=10.0, reported_at=110.0),
                                        EpochRecord(2, {}, seconds=5.0, reported_at=115.0)]),
              TrialRecord("b", history=[EpochRecord(1, {}, seconds=8.0, reported_at=112.0),
                                        EpochRecord(2, {}, seconds=None, reported_at=None)])]
    spent = Spent.of_record(trials, workers=2)
    assert spent.worker_s == (10 + 5 + 8) * 2 and spent.epochs == 3
    assert spent.wall_s == 15  # 100..115, b's 104..112 inside it


def test_a_budget_is_spent_at_either_limit_and_affords_a_trial_its_grace_period() -> None:
    spent = Spent()
    for end in (100.0, 200.0):
        spent.add(end, 100.0, workers=1)  # two epochs of 100 s: 200 worker-s, 200 wall-s
    assert not Budget(worker_hours=300 / HOUR).exhausted(spent)
    assert Budget(worker_hours=200 / HOUR).exhausted(spent)
    assert Budget(wall_hours=200 / HOUR).exhausted(spent)
    # 100 worker-s left: one epoch at the mean cost, not two.
    assert Budget(worker_hours=300 / HOUR).affords(spent, 1)
    assert not Budget(worker_hours=300 / HOUR).affords(spent, 2)
    assert Budget(worker_hours=1.0).affords(Spent(), 1000)  # nothing spent: no cost known
    assert Budget(worker_hours=0.5, gpu=True).summary(spent) == \
        "budget: 0.0556 of 0.5 GPU-hours, 0.0556 wall-hours"
    assert Budget(wall_hours=200 / HOUR).summary(spent).startswith("budget spent: ")


class _Inner(FIFOScheduler):
    """A scheduler that lets every trial go on and hands out its pending ones in order."""

    def __init__(self, pending: list[Any]) -> None:
        super().__init__()
        self.pending = list(pending)
        self.results: list[str] = []

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        self.results.append(trial.trial_id)
        return TrialScheduler.CONTINUE

    def choose_trial_to_run(self, tune_controller: Any) -> Any:
        return self.pending.pop(0) if self.pending else None


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> tuple[BudgetGate, Meter]:
    meter = Meter(Budget(worker_hours=250 / HOUR), Spent(), workers=1, grace=1)
    monkeypatch.setattr(driver_budget, "_METER", meter)
    trials = [SimpleNamespace(trial_id=i) for i in "abc"]
    return BudgetGate(_Inner(trials)), meter


def test_trials_stop_at_the_epoch_end_that_spends_the_budget(gate) -> None:
    scheduler, meter = gate
    a, b = scheduler.choose_trial_to_run(None), scheduler.choose_trial_to_run(None)
    assert scheduler.on_trial_result(None, a, {"time_this_iter_s": 100.0}) == "CONTINUE"
    assert scheduler.on_trial_result(None, b, {"time_this_iter_s": 100.0}) == "CONTINUE"
    assert scheduler.on_trial_result(None, a, {"time_this_iter_s": 100.0}) == "STOP"
    assert scheduler.on_trial_result(None, b, {"time_this_iter_s": 100.0}) == "STOP"
    assert meter.stopped == {"a", "b"} and scheduler.inner.results == ["a", "b", "a", "b"]
    assert driver_budget.stopped_by("a") == "budget" and driver_budget.stopped_by("c") is None


class _Proposer(Searcher):
    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        return {"trial": trial_id}


def test_no_trial_starts_that_what_is_left_cannot_give_its_grace_period(gate) -> None:
    scheduler, _ = gate
    searcher, stopper = BudgetSearcher(_Proposer(metric="val/acc", mode="max")), BudgetStopper()
    assert searcher.suggest("a") == {"trial": "a"}
    a = SimpleNamespace(trial_id="a", status="PENDING")
    ended = SimpleNamespace(trial_id="z", status="TERMINATED")  # restored by a resume
    scheduler.on_trial_add(None, ended)
    scheduler.on_trial_add(None, a)
    scheduler.on_trial_result(None, a, {"time_this_iter_s": 200.0})  # 50 worker-s left
    assert searcher.suggest("b") is None  # an epoch costs 200: none is created
    assert not stopper.stop_all(), "a has not ended"
    scheduler.on_trial_complete(None, a, {})
    assert stopper.stop_all()


def test_without_a_budget_the_gate_is_the_scheduler_it_wraps(monkeypatch) -> None:
    monkeypatch.setattr(driver_budget, "_METER", None)
    trial = SimpleNamespace(trial_id="a")
    scheduler = BudgetGate(_Inner([trial]))
    assert scheduler.choose_trial_to_run(None) is trial
    assert scheduler.on_trial_result(None, trial, {"time_this_iter_s": 1e9}) == "CONTINUE"
    assert BudgetSearcher(_Proposer(metric="val/acc", mode="max")).suggest("b") == {"trial": "b"}
    assert not BudgetStopper().stop_all()
