"""Ray Tune's PBT, exploiting the checkpoints of its trials' Ray Train runs.

Private: ``_checkpoint_or_exploit`` and ``_exploit`` (overridden), ``_trial_state`` and
``_PBTTrialState``, ``_get_new_config``, ``_hyperparam_mutations``, ``_num_perturbations``,
``_make_experiment_tag``. Public way: none (Ray documents no PBT for Train V2); where this layer is
off, a sweep with ``scheduler.type: pbt`` is refused at launch, and ASHA sweeps run as ever.
"""

from __future__ import annotations

import random
from typing import Any

from ray.tune.schedulers import PopulationBasedTraining
from typing_extensions import override

from tuning._internals.probe import layer

LAYER = "pbt-over-train"


@layer(LAYER, "population-based training over Ray Train checkpoints",
       "a sweep with scheduler.type: pbt is refused", execution=False)
def _probe() -> None:
    from ray.tune.schedulers.pbt import _make_experiment_tag, _PBTTrialState

    del _make_experiment_tag, _PBTTrialState
    for name in ("_checkpoint_or_exploit", "_exploit", "_get_new_config"):
        getattr(PopulationBasedTraining, name)


class PopulationBasedTrainingOverTrain(PopulationBasedTraining):
    """Ray Tune's PBT (its quantiles, perturbation schedule and explore step), exploiting the
    checkpoints of the trials' Ray Train runs instead of Tune's own.

    PBT clones only checkpoints reported to Tune (``tune.report(checkpoint=)``);
    a trial that drives a Ray Train run reports Train's checkpoints as a path among its metrics
    (``TuneReportCallback``), so stock PBT finds nothing to clone and never exploits, and Ray
    documents no PBT path for Train V2. A subclass decides, in :meth:`prepare_exploit`, how a
    trial continues from its donor's Train checkpoint.
    """

    @override
    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        # Stock PBT refuses every searcher: PBT's changes would falsify what the searcher
        # believes a trial ran with. lightsweep's searcher proposes the first values only and
        # hears when a trial's values change (tuning.driver.searcher), so it stays truthful.
        from ray.tune.schedulers.pbt import _PBTTrialState

        self._trial_state[trial] = _PBTTrialState(trial)

    def prepare_exploit(self, trial: Any, donor: Any, config: dict[str, Any]) -> dict[str, Any] | None:
        """Readies ``trial`` to continue from ``donor``'s latest checkpoint with ``config``
        (the donor's, explored); returns the config to restart it with, or None to skip."""
        raise NotImplementedError

    @override
    def _checkpoint_or_exploit(self, trial: Any, tune_controller: Any,
                               upper_quantile: list[Any], lower_quantile: list[Any]) -> None:
        # Stock PBT has a top trial save a checkpoint for later; here every top trial is a
        # donor as it stands: its Train run always keeps its latest checkpoint.
        if trial in lower_quantile:
            self._exploit(tune_controller, trial, random.choice(upper_quantile))

    @override
    def _exploit(self, tune_controller: Any, trial: Any, trial_to_clone: Any) -> None:
        from ray.tune.schedulers.pbt import _make_experiment_tag

        explored, _ = self._get_new_config(trial, trial_to_clone)
        config = self.prepare_exploit(trial, trial_to_clone, explored)
        if config is None:
            return
        state, donor_state = self._trial_state[trial], self._trial_state[trial_to_clone]
        if trial.status != "PAUSED":
            tune_controller.pause_trial(trial, should_checkpoint=False)
        trial.set_experiment_tag(
            _make_experiment_tag(state.orig_tag, config, self._hyperparam_mutations))
        trial.set_config(config)
        self._num_perturbations += 1
        state.last_perturbation_time = donor_state.last_perturbation_time
        state.last_train_time = donor_state.last_train_time
