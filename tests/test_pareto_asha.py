"""Early stopping by Pareto rank at ASHA's rungs, decided on fake trials."""

from __future__ import annotations

from dataclasses import dataclass

from ray.tune.schedulers import TrialScheduler

from tuning.config.spec import Constraint, Objective, rung_milestones
from tuning.driver.pareto_asha import ParetoASHA, keeps_going

GO, STOP = TrialScheduler.CONTINUE, TrialScheduler.STOP


@dataclass
class FakeTrial:
    trial_id: str


def _scheduler(constraints: list[Constraint] | None = None) -> ParetoASHA:
    return ParetoASHA([Objective(metric="val/acc", mode="max"),
                       Objective(metric="model/params", mode="min")], constraints or [],
                      max_epochs=9, grace_period=1, reduction_factor=3)


def _report(scheduler: ParetoASHA, trial: str, epoch: int, acc: float, params: float,
            **more: float) -> str:
    result = {"epoch": epoch, "val/acc": acc, "model/params": params, **more}
    return scheduler.on_trial_result(None, FakeTrial(trial), result)


def test_rungs_are_grace_times_powers_of_the_factor_below_max_epochs() -> None:
    assert rung_milestones(9, 1, 3) == [1, 3]
    assert rung_milestones(30, 3, 3) == [3, 9, 27]
    assert rung_milestones(2, 2, 2) == []


def test_the_first_trial_at_a_rung_goes_on() -> None:
    assert _report(_scheduler(), "a", 1, 0.5, 1000) == GO


def test_a_small_model_on_the_front_goes_on_where_accuracy_alone_would_stop_it() -> None:
    scheduler = _scheduler()
    for n, acc in enumerate((0.80, 0.82, 0.84)):
        _report(scheduler, f"big{n}", 1, acc, 100_000 + n)
    # Least accurate of all at the rung (ASHA by val/acc would stop it), but the smallest.
    assert _report(scheduler, "small", 1, 0.60, 2_000) == GO


def test_a_trial_dominated_at_the_rung_stops() -> None:
    scheduler = _scheduler()
    _report(scheduler, "a", 1, 0.80, 10_000)
    _report(scheduler, "b", 1, 0.70, 5_000)
    assert _report(scheduler, "c", 1, 0.65, 20_000) == STOP  # worse than both in both


def test_a_trial_is_judged_once_per_rung_even_when_a_restore_repeats_the_epoch() -> None:
    scheduler = _scheduler()
    _report(scheduler, "a", 1, 0.80, 10_000)
    assert _report(scheduler, "b", 1, 0.70, 20_000) == STOP
    assert _report(scheduler, "b", 2, 0.70, 20_000) == GO  # between rungs: not judged again


def test_a_result_without_an_objective_is_not_judged() -> None:
    scheduler = _scheduler()
    _report(scheduler, "a", 1, 0.80, 10_000)
    assert scheduler.on_trial_result(None, FakeTrial("b"), {"epoch": 1, "val/acc": 0.1}) == GO


def test_a_trial_that_breaks_a_constraint_ranks_after_those_that_hold_it() -> None:
    scheduler = _scheduler([Constraint(metric="model/latency_ms", op="<=", bound=5.0)])
    _report(scheduler, "slow-good", 1, 0.95, 1_000, **{"model/latency_ms": 9.0})
    _report(scheduler, "fast", 1, 0.50, 50_000, **{"model/latency_ms": 1.0})
    # Dominates "fast", yet breaks the constraint as the first did: ranks after it.
    assert _report(scheduler, "slow", 1, 0.90, 900, **{"model/latency_ms": 8.0}) == STOP


def test_the_share_that_goes_on_is_about_the_inverse_of_the_reduction_factor() -> None:
    # Six mutually non-dominated points: ceil(6 / 3) = 2 go on (the two ends of the front).
    front = [((-float(i), float(i)), 0.0) for i in range(6)]
    end_last = list(front)
    middle_last = [*(p for i, p in enumerate(front) if i != 2), front[2]]
    assert keeps_going(end_last, 3)  # an end of the front goes on
    assert not keeps_going(middle_last, 3)  # a point in its crowded middle stops
