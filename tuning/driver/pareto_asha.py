"""Early stopping for several objectives: ASHA's rungs, with trials compared by Pareto rank.

Ray's ASHA compares trials at a rung by one metric. With accuracy and model size as the
objectives, ranking by accuracy alone stops every small model at the first rung, since a small
model is less accurate after a few epochs: the cheap end of the front is never trained, though it
is half of what the user asked for. Here a trial that reaches a rung (``grace_period`` epochs,
times ``reduction_factor`` at each next one) is placed among all trials recorded at that rung,
itself included, by constrained non-dominated sorting and, within a front, by crowding distance
(NSGA-II's selection, :func:`tuning.record.pareto.pareto_order`); it continues if it is among the
first ``ceil(n / reduction_factor)`` of the ``n``. So a small model on the rung's front goes on
where a single-metric ASHA would stop it, and a trial dominated at the rung stops. This is
MO-ASHA's NSGA-II variant (Schmucker et al., 2021); the bench (``bench/pareto.py``) measures the
front it finds against random search with every trial run to the end.
"""

from __future__ import annotations

import math
from typing import Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from typing_extensions import override

from tuning.config.spec import Constraint, Objective, rung_milestones
from tuning.record import is_finite_number
from tuning.record.pareto import Point, pareto_order, scored


def keeps_going(recorded: list[tuple[Point, float]], reduction_factor: int) -> bool:
    """Whether the last of ``recorded`` (points to minimize, with constraint violations) is
    among the first ``ceil(n / reduction_factor)`` of all of them."""
    order = pareto_order([p for p, _ in recorded], [v for _, v in recorded])
    return order.index(len(recorded) - 1) < max(1, math.ceil(len(recorded) / reduction_factor))


class ParetoASHA(FIFOScheduler):
    """Asynchronous successive halving over several objectives (see the module's docstring).

    Args:
        objectives: What the trials optimize, each a metric and a mode.
        constraints: What they must satisfy; a trial that breaks one ranks after those that do.
        max_epochs: Epochs of a trial that is never stopped.
        grace_period: Epochs before the first rung.
        reduction_factor: The share of trials that go on at each rung is about its inverse.
        time_attr: The result key that counts a trial's epochs (it survives restores).
    """

    def __init__(self, objectives: list[Objective], constraints: list[Constraint],
                 max_epochs: int, grace_period: int, reduction_factor: int,
                 time_attr: str = "epoch") -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._objectives = objectives
        self._constraints = constraints
        self._reduction_factor = reduction_factor
        self._time_attr = time_attr
        # Each rung's trials: their points and violations, in the order they reached it.
        self._rungs: dict[int, dict[str, tuple[Point, float]]] = {
            m: {} for m in rung_milestones(max_epochs, grace_period, reduction_factor)}

    @override
    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return True  # its objectives are its own; Tune's metric is the first of them

    def point(self, result: dict[str, Any]) -> tuple[Point, float] | None:
        """The result's objectives (to minimize) and constraint violation; None when it lacks
        an objective (nothing to compare yet)."""
        return scored(result, self._objectives, self._constraints)

    @override
    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        epoch = result.get(self._time_attr)
        point = self.point(result)
        if point is None or not is_finite_number(epoch):
            return TrialScheduler.CONTINUE
        # The highest rung the trial has reached and not been judged at (a restored trial
        # repeats epochs it was judged at).
        for milestone in sorted(self._rungs, reverse=True):
            recorded = self._rungs[milestone]
            if epoch >= milestone and trial.trial_id not in recorded:
                recorded[trial.trial_id] = point
                if not keeps_going(list(recorded.values()), self._reduction_factor):
                    return TrialScheduler.STOP
                break
        return TrialScheduler.CONTINUE

    @override
    def debug_string(self) -> str:
        return "ParetoASHA: " + ", ".join(
            f"epoch {m}: {len(r)} trials" for m, r in sorted(self._rungs.items()))
