"""Extending a sweep that ran: more trials, or some of its trials trained longer.

``resume EXPERIMENT --num-samples N`` gives a sweep trials beyond its ``search.num_samples``;
``resume EXPERIMENT --max-epochs M [--top K | --trials ID ...]`` trains some of its trials on to
``M`` epochs from their last checkpoints. Either runs as a new Ray Tune run in the experiment
(:func:`tuning.driver.sweep.resume`); this module decides what that run does, and refuses what
cannot apply to a sweep that ran, naming the flag.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState

from tuning.config.space import SearchSpace
from tuning.config.spec import SweepSpec
from tuning.errors import SweepError
from tuning.record import Ledger, TrialRecord, is_finite_number

# What a changed sweep file (``resume --sweep``) may not change: its earlier trials ran with them,
# and the experiment's record holds one sweep. The space, the search, the scheduler's rungs, the
# resources, checkpoints, failures, W&B and the budget may change.
FIXED_FIELDS = ("module", "datamodule", "metric", "mode", "objectives", "constraints",
                "module_args", "datamodule_args", "trainer_args", "optimizer", "lr_scheduler",
                "callbacks", "lightning_config", "hydra_config")
# An Optuna trial's user attribute: an earlier trial left out of the study's model, its values
# outside a changed sweep's space.
OUTSIDE_ATTR = "outside_space"


@dataclass(frozen=True)
class Extension:
    """A run that extends a sweep that ran.

    Attributes:
        added_by: Which extension of the sweep it is (1 for the first).
        first: The number of the first trial it adds: the sweep's trials before it.
        searcher: The sweep's searcher, continued from its saved state (None: nothing searched).
        earlier: Each earlier trial's metric by epoch, for ASHA's rungs.
        continued: The trials it trains longer (none: it adds trials).
    """

    added_by: int
    first: int
    searcher: Any
    earlier: dict[str, dict[int, float]]
    continued: tuple[TrialRecord, ...] = ()

    @classmethod
    def of(cls, ledger: Ledger, searcher: Any,
           continued: tuple[TrialRecord, ...] = ()) -> Extension:
        """The next extension of the sweep ``ledger`` records."""
        metric = ledger.spec.metric
        return cls(
            added_by=1 + max((t.added_by for t in ledger.trials.values()), default=0),
            first=ledger.spec.search.num_samples, searcher=searcher, continued=continued,
            earlier={t.trial_id: {e.epoch: e.metrics[metric] for e in t.history
                                  if is_finite_number(e.metrics.get(metric))}
                     for t in ledger.trials.values()})


def more_trials(spec: SweepSpec, num_samples: int | None) -> int | None:
    """``num_samples`` when it asks for more trials than ``spec`` has, None when it asks for
    none more.

    Raises:
        SweepError: If it asks for fewer, or the sweep cannot take more.
    """
    if num_samples is None or num_samples == spec.search.num_samples:
        return None
    if num_samples < spec.search.num_samples:
        raise SweepError(
            f"--num-samples: {num_samples} is below the sweep's {spec.search.num_samples} trials, "
            "whose records stay. Fix: give a number above it (the trials in all, earlier ones "
            "included)")
    _not_pbt(spec, "--num-samples")
    return num_samples


def _not_pbt(spec: SweepSpec, flag: str) -> None:
    if spec.scheduler.name == "pbt":
        raise SweepError(
            f"{flag}: population-based training trains one population, whose members steer "
            "each other while they run; a run after it would train alone. Fix: launch a new "
            "sweep, with --warm-start from this one")


def trials_to_train_longer(ledger: Ledger, max_epochs: int | None, top: int | None = None,
                           named: list[str] | None = None) -> tuple[TrialRecord, ...]:
    """The trials ``resume --max-epochs`` trains on, best first: those ``named``, else the
    ``top`` best (all, without it) of those the scheduler let run to the sweep's
    ``scheduler.max_epochs``; none when ``max_epochs`` is None.

    Raises:
        SweepError: Naming the flag: epochs not above the sweep's, a trial it does not have
            or one with no checkpoint to go on from, none to train, or a PBT sweep.
    """
    spec = ledger.spec
    if max_epochs is None:
        if top is not None or named:
            raise SweepError(f"{'--top' if top is not None else '--trials'}: it chooses the "
                             "trials to train longer. Fix: give --max-epochs M too")
        return ()
    before = spec.scheduler.max_epochs
    if max_epochs <= before:
        raise SweepError(
            f"--max-epochs: {max_epochs} is not above the sweep's {before} epochs per trial "
            "(scheduler.max_epochs). Fix: give more epochs, the trials' total")
    _not_pbt(spec, "--max-epochs")
    ranked = [ledger.trials[row["trial_id"]] for row in ledger.rows()]
    if named:
        unknown = [i for i in named if i not in ledger.trials]
        if unknown:
            raise SweepError(f"--trials: the sweep has no trial {', '.join(unknown)}. Fix: name "
                             "trials its leaderboard lists")
        chosen = [t for t in ranked if t.trial_id in named]
    else:
        chosen = [t for t in ranked if t.status == "completed" and t.epochs >= before]
        chosen = chosen[:top] if top is not None else chosen
    if not chosen:
        raise SweepError(
            f"--max-epochs: no trial of the sweep ran its {before} epochs (the scheduler stopped "
            "the others). Fix: name the trials to train longer with --trials ID ...")
    unsaved = [t.trial_id for t in chosen if not any(e.checkpoint for e in t.history)]
    if unsaved:
        raise SweepError(f"--trials: {', '.join(unsaved)} kept no checkpoint to go on from. "
                         "Fix: name trials that ran at least one epoch")
    return tuple(chosen)


def check_changed_sweep(before: SweepSpec, after: SweepSpec) -> None:
    """Refuses what a changed sweep file cannot change in an experiment that ran.

    Raises:
        SweepError: Naming the first such field, and the fix.
    """
    for name in FIXED_FIELDS:
        if getattr(before, name) != getattr(after, name):
            raise SweepError(
                f"--sweep: {name} differs from the experiment's, whose trials ran with it. Fix: "
                f"keep {name} as it was, or launch a new sweep with --warm-start from this one")
    for name in ("name", "max_epochs"):
        if getattr(before.scheduler, name) != getattr(after.scheduler, name):
            fix = ("resume --max-epochs trains trials longer" if name == "max_epochs"
                   else "launch a new sweep with --warm-start from this one")
            raise SweepError(f"--sweep: scheduler.{name} differs from the experiment's. Fix: "
                             f"keep it as it was ({fix})")


def _within(distribution: BaseDistribution, value: Any) -> bool:
    if isinstance(distribution, CategoricalDistribution):
        return value in distribution.choices
    if isinstance(distribution, IntDistribution):
        return (isinstance(value, int) and distribution.low <= value <= distribution.high
                and (value - distribution.low) % distribution.step == 0)
    if isinstance(distribution, FloatDistribution):
        return (isinstance(value, int | float) and not isinstance(value, bool)
                and distribution.low <= value <= distribution.high)
    return False


def refit(trials: list[FrozenTrial], space: SearchSpace) -> list[FrozenTrial]:
    """The study's ``trials`` for a changed ``space``, number for number: each that fits it
    (every key of it still searched, its value within the key's new distribution; a key newly
    searched it simply lacks) under the new distributions; each that does not, a FAIL trial
    without values
    (:data:`OUTSIDE_ATTR`), out of the sampler's model, its number kept (trials' seeds follow
    their numbers)."""
    fitted = []
    for trial in trials:
        distributions = space.optuna_distributions(trial.params)
        fits = (trial.state in (TrialState.COMPLETE, TrialState.PRUNED)
                and set(distributions) == set(trial.params)
                and all(_within(distributions[k], v) for k, v in trial.params.items()))
        if not fits:
            fitted.append(optuna.trial.create_trial(
                state=TrialState.FAIL, user_attrs={**trial.user_attrs, OUTSIDE_ATTR: True}))
            continue
        fitted.append(optuna.trial.create_trial(
            state=trial.state, params=trial.params, distributions=distributions,
            values=trial.values if trial.state == TrialState.COMPLETE else None,
            intermediate_values=trial.intermediate_values, user_attrs=trial.user_attrs,
            system_attrs=trial.system_attrs))
    return fitted
