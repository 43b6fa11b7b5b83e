"""Ray's ``OptunaSearch``, opened up: its study, its Optuna trial of each Tune trial.

lightsweep's searcher (:mod:`tuning.driver.searcher`) reports each epoch at its own step, tells a
trial ASHA stopped PRUNED and one that failed FAIL, gives each trial its seed, warm-starts the
study and matches a resumed sweep's trials to Optuna's. Private: ``_setup_study``, ``_ot_study``,
``_ot_trials``, ``_completed_trials``, ``_space``. Public way: none (Ray's searcher reports
intermediate values at Tune's iteration and tells every ended trial COMPLETE); where this layer
is off, a sweep searches with Ray's ``OptunaSearch`` as it is.
"""

from __future__ import annotations

import inspect
from typing import Any

from ray.tune.search.optuna import OptunaSearch
from typing_extensions import override

from tuning._internals.probe import layer

LAYER = "optuna-search-internals"


@layer(LAYER, "telling Optuna which trials were stopped early or failed, with per-trial seeds, "
       "warm start and a study file for optuna-dashboard",
       "the sweep searches with Ray's OptunaSearch as it is (a stopped trial is told COMPLETE)",
       execution=False)
def _probe() -> None:
    # Read from its source: an instance would open a study, and Ray and Optuna say so.
    source = inspect.getsource(OptunaSearch)
    getattr(OptunaSearch, "_setup_study")  # noqa: B009
    for name in ("_ot_study", "_ot_trials", "_completed_trials", "_space"):
        if f"self.{name} =" not in source:
            raise AttributeError(f"OptunaSearch no longer sets {name}")


class OptunaSearchInternals(OptunaSearch):
    """Ray's ``OptunaSearch``, with the parts of it that lightsweep's searcher builds on."""

    @override
    def _setup_study(self, mode: str | list[str]) -> None:
        super()._setup_study(mode)
        self.on_study_ready(self._ot_study)

    def on_study_ready(self, study: Any) -> None:
        """Called once the Optuna study exists (a subclass adds to it)."""

    @property
    def study(self) -> Any:
        """The Optuna study."""
        return self._ot_study

    def optuna_trial(self, trial_id: str) -> Any:
        """The live Optuna trial of Tune trial ``trial_id``."""
        return self._ot_trials[trial_id]

    def optuna_numbers(self) -> dict[int, str]:
        """Optuna's trial number of each Tune trial id it proposed, number first."""
        return {t.number: trial_id for trial_id, t in self._ot_trials.items()}

    def is_completed(self, trial_id: str) -> bool:
        return trial_id in self._completed_trials

    def mark_completed(self, trial_id: str) -> None:
        self._completed_trials.add(trial_id)

    def proposed(self) -> list[str]:
        """The Tune trial ids given an Optuna trial, in Optuna's order."""
        return sorted(self._ot_trials, key=lambda trial_id: self._ot_trials[trial_id].number)

    def hand_over(self, old: str, new: str) -> None:
        """Gives Tune trial ``new`` the Optuna trial of ``old``: ``suggest(new)`` then proposes
        its values again (OptunaSearch asks Optuna only for a trial id it has no trial for)."""
        self._ot_trials[new] = self._ot_trials.pop(old)
        if old in self._completed_trials:
            self._completed_trials.discard(old)
            self._completed_trials.add(new)

    def ask_with(self, trial_id: str, params: dict[str, Any]) -> None:
        """Gives Tune trial ``trial_id`` a new Optuna trial with these values: ``suggest`` then
        proposes them (the define-by-run space suggests what Optuna was asked to enqueue)."""
        self.study.enqueue_trial(params)
        self._ot_trials[trial_id] = (
            self.study.ask() if callable(self._space)
            else self.study.ask(fixed_distributions=self._space))
