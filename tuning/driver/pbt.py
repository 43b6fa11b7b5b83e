"""Population-based training over Ray Train trials: what ``scheduler: {name: pbt}`` runs.

Every ``perturbation_interval`` epochs a trial reports, Ray Tune's PBT ranks the running trials
by the sweep's metric. A trial in the bottom ``quantile_fraction`` then continues from a top
trial (its donor): the donor's latest checkpoint is copied into the trial's own directory (the
donor untouched), and the trial takes the donor's searched values, each perturbed (x0.8 or x1.2;
a neighbour in a choice or an integer range) or, with ``resample_probability``, drawn anew from
``space``, and kept within ``space``'s bounds; keys outside ``scheduler.mutate`` (a layer's width,
which the weights fix) are the donor's. Tune then restarts the trial: its driver starts a
fresh Train run from the copy (:mod:`tuning.trial.driver`), whose workers put the new values over
what the checkpoint restores: hyperparameters, optimizer param groups, LR schedulers' base values,
the DataModule (:mod:`tuning.trial.explored`).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from ray.tune.integration.ray_train import CHECKPOINT_PATH_KEY
from ray.tune.schedulers import TrialScheduler
from typing_extensions import override

from tuning._internals.pbt import PopulationBasedTrainingOverTrain
from tuning.config.space import LogUniform, SearchSpace, Uniform
from tuning.config.spec import SweepSpec
from tuning.contracts import LINEAGE_KEY, SEED_KEY
from tuning.record.layout import trial_path
from tuning.record.lineage import PBT_DIR, Exploit
from tuning.record.location import Location
from tuning.record.store import Ledger

logger = logging.getLogger(__name__)


def mutations(space: SearchSpace, keys: list[str]) -> dict[str, Any]:
    """PBT's mutation of each of ``keys``: a Tune domain for a continuous one, the list of
    values for a choice or an integer range (PBT moves to a neighbour in a list)."""
    found: dict[str, Any] = {}
    for key in keys:
        dist = space.distributions[key]
        values = dist.finite_values()
        found[key] = values if values is not None else dist.to_tune()
    return found


def within_bounds(space: SearchSpace, config: dict[str, Any]) -> dict[str, Any]:
    """PBT's explore step multiplies continuous values: kept inside ``space``'s bounds."""
    for key, dist in space.distributions.items():
        if isinstance(dist, LogUniform | Uniform) and key in config:
            config[key] = min(max(float(config[key]), dist.low), dist.high)
    return config


def _generation(config: dict[str, Any]) -> int:
    exploit = Exploit.of(config)
    return exploit.generation if exploit else 0


class TrainRunPBT(PopulationBasedTrainingOverTrain):
    """PBT whose exploit copies the donor's latest Train checkpoint into the trial's directory.

    Args:
        spec: The sweep (``scheduler.name: pbt``).
        experiment: The experiment directory.
        concurrency: How many trials run at once (0: unknown, trials take turns as in Ray).
    """

    def __init__(self, spec: SweepSpec, experiment: Location, concurrency: int = 0) -> None:
        space = spec.search_space
        self._searched = list(space.distributions)
        super().__init__(
            # The epoch survives restarts; Tune's training_iteration restarts at 1 after one.
            time_attr="epoch",
            perturbation_interval=spec.scheduler.pbt_interval,
            quantile_fraction=spec.scheduler.pbt_quantile,
            resample_probability=spec.scheduler.pbt_resample,
            hyperparam_mutations=mutations(space, spec.pbt_mutated),
            custom_explore_fn=functools.partial(within_bounds, space),
            log_config=False,  # the record keeps each trial's lineage
        )
        self.experiment = experiment
        self._recorded: dict[str, dict[str, Any]] | None = None
        self._max_epochs = spec.scheduler.max_epochs
        self.concurrency = concurrency

    @override
    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        recorded = self._recorded_configs().get(trial.trial_id)
        if recorded is not None and _generation(recorded) > _generation(trial.config):
            # A resumed sweep's trials come from Tune's last saved state, which can predate an
            # exploit that the record already holds (the driver died in between): the trial
            # trained on with those values, so it goes on with them, not its old ones.
            logger.info("trial %s goes on as population-based training moved it (generation %d)",
                        trial.trial_id, _generation(recorded))
            trial.set_config(recorded)
        super().on_trial_add(tune_controller, trial)

    def _recorded_configs(self) -> dict[str, dict[str, Any]]:
        """The config of each trial the record saw PBT move, read once (at the first trial added:
        all of a resumed sweep's trials are added before any runs)."""
        recorded = self._recorded
        if recorded is None:
            ledger = Ledger.load_if_any(self.experiment)
            trials = ledger.trials.values() if ledger is not None else []
            recorded = self._recorded = {t.trial_id: t.config for t in trials if t.lineage}
        return recorded

    @override
    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        decision = str(super().on_trial_result(tune_controller, trial, result))
        if decision != TrialScheduler.PAUSE:
            return decision
        # Ray's PBT pauses a trial at a perturbation point whenever another one is paused or
        # pending, so that they take turns. Pausing a trial stops its Train run, which starts
        # again later from its checkpoint (tens of seconds of start-up). No turn is needed when
        # every unfinished trial fits at once (the one paused is then a moved trial, about to
        # restart on its own), nor for a trial at its last epoch, which ends now anyway.
        at_end = int(result.get("epoch", 0)) >= self._max_epochs
        unfinished = sum(not t.is_finished() for t in tune_controller.get_trials())
        fits = unfinished <= getattr(self, "concurrency", 0)
        return TrialScheduler.CONTINUE if at_end or fits else decision

    @override
    def prepare_exploit(self, trial: Any, donor: Any, config: dict[str, Any]
                        ) -> dict[str, Any] | None:
        result = donor.last_result or {}
        checkpoint, epoch = result.get(CHECKPOINT_PATH_KEY), result.get("epoch")
        if not checkpoint or epoch is None:
            return None
        if max(int(epoch), int((trial.last_result or {}).get("epoch", 0))) >= self._max_epochs:
            return None  # nothing left to train: the trial ends as it is
        previous = Exploit.of(trial.config)
        generation = previous.generation + 1 if previous else 1
        directory = trial_path(self.experiment, trial.trial_id) / PBT_DIR
        copy = directory / f"{generation:03d}"
        try:
            self.experiment.from_fs_path(checkpoint).copy_to(copy)
        except FileNotFoundError:
            # Train removed it (the donor reported again meanwhile): the trial goes on as is.
            logger.info("trial %s: trial %s's checkpoint is gone; not exploited",
                        trial.trial_id, donor.trial_id)
            copy.remove()
            return None
        if previous is not None:
            (directory / f"{previous.generation:03d}").remove()
        config = dict(config)
        if SEED_KEY in trial.config:  # the trial keeps its own seed
            config[SEED_KEY] = trial.config[SEED_KEY]
        exploit = Exploit(
            generation=generation, donor=donor.trial_id, epoch=int(epoch), checkpoint=copy.uri,
            values={k: config[k] for k in self._searched if k in config},
            before={k: trial.config[k] for k in self._searched if k in trial.config},
        )
        config[LINEAGE_KEY] = exploit.as_data()
        changed = ", ".join(f"{k} {exploit.before.get(k)!r} -> {v!r}"
                            for k, v in exploit.values.items()
                            if v != exploit.before.get(k)) or "the same values"
        logger.info("trial %s continues from trial %s's epoch %d: %s",
                    trial.trial_id, donor.trial_id, exploit.epoch, changed)
        return config
