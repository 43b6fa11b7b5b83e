"""Warm starts: an earlier sweep's finished trials handed to a new sweep's Optuna study.

``launch --warm-start EXPERIMENT`` reads the earlier experiment's leaderboard and gives the new
study each of its trials as Optuna would have recorded it (see :mod:`tuning.driver.searcher`): a trial
that ran every epoch COMPLETE with its last value, one stopped early PRUNED with its per-epoch
values, one that failed before any result FAIL. TPE then proposes from what the earlier sweep
learned instead of starting blind. The two sweeps must search the same space for the same
objectives (metric and mode, or several) under the same constraints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuning.config.spec import SweepSpec, violations
from tuning.errors import SweepError
from tuning.record import FINISHED, Ledger, TrialRecord, is_finite_number
from tuning.record.location import Location


def _mismatch(spec: SweepSpec, past: SweepSpec) -> str | None:
    def aims(s: SweepSpec) -> str:
        said = ", ".join(f"{o.metric} ({o.mode})" for o in s.objective_list)
        return said + (f" under {', '.join(s.constraints)}" if s.constraints else "")

    if (past.objective_list, past.constraint_list) != (spec.objective_list, spec.constraint_list):
        return f"it optimized {aims(past)}, this sweep {aims(spec)}"
    searched, past_searched = spec.search_space.searched, past.search_space.searched
    if searched != past_searched:
        mine, theirs = set(searched), set(past_searched)
        if mine != theirs:
            return (f"it searched {', '.join(sorted(theirs)) or 'nothing'}, this sweep "
                    f"{', '.join(sorted(mine)) or 'nothing'}")
        differ = sorted(k for k in mine if searched[k] != past_searched[k])
        return f"{', '.join(differ)} searched over other values"
    return None


def _frozen(record: TrialRecord, spec: SweepSpec, distributions: dict[str, Any]) -> FrozenTrial:
    params = {key: record.config[key] for key in distributions}
    metrics = [o.metric for o in spec.objective_list]
    last = record.last_scored_epoch(metrics)
    # As the searcher told it: constraints from the last scored epoch, a missing value broken.
    constraints = violations(spec.constraint_list, last.metrics) if last else None
    ran_all = (record.status == "completed" and last is not None
               and last.epoch >= spec.scheduler.max_epochs)
    if len(metrics) > 1:  # no intermediate values with several objectives
        if ran_all and last is not None:
            return optuna.trial.create_trial(
                params=params, distributions=distributions,
                values=[last.metrics[m] for m in metrics], constraints=constraints)
        return optuna.trial.create_trial(
            params=params, distributions=distributions, constraints=constraints,
            state=TrialState.PRUNED if last else TrialState.FAIL)
    values = {e.epoch: e.metrics[spec.metric] for e in record.history
              if is_finite_number(e.metrics.get(spec.metric))}
    if ran_all and values:
        return optuna.trial.create_trial(params=params, distributions=distributions,
                                         value=values[max(values)], intermediate_values=values,
                                         constraints=constraints)
    state = TrialState.PRUNED if values else TrialState.FAIL
    return optuna.trial.create_trial(params=params, distributions=distributions, state=state,
                                     intermediate_values=values,
                                     constraints=constraints if values else None)


def past_trials(experiment: str | Path | Location, spec: SweepSpec) -> list[FrozenTrial]:
    """The ended trials of ``experiment`` as Optuna trials for ``spec``'s study.

    A trial that completed an earlier, shorter ``max_epochs`` goes in as PRUNED: it did not run
    as long as this sweep's trials will.

    Raises:
        SweepError: If ``experiment`` is no experiment, searched another space, or optimized
            another metric or mode.
    """
    try:
        past = Ledger.load(str(experiment))
    except SweepError as error:
        raise SweepError(f"--warm-start: {error}") from error
    problem = _mismatch(spec, past.spec)
    if problem:
        raise SweepError(
            f"--warm-start: {experiment} cannot warm-start this sweep: {problem}. Fix: warm-start "
            "from a sweep of the same space, metric and mode, or launch without --warm-start"
        )
    return optuna_trials(past, spec)


def optuna_trials(ledger: Ledger, spec: SweepSpec | None = None) -> list[FrozenTrial]:
    """The ended trials of ``ledger`` as lightsweep's searcher tells them to Optuna, judged
    by ``spec`` (default: the ledger's own sweep)."""
    spec = spec or ledger.spec
    space = spec.search_space
    if not space.searched:
        return []  # nothing searched: no study
    ended = [r for r in ledger.trials.values() if r.status in (*FINISHED, "errored")]
    # Each trial has the parameters of the branches it took (conditional choices).
    return [_frozen(record, spec, space.optuna_distributions(record.config)) for record in ended]
