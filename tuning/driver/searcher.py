"""Optuna, told the truth about trials that the scheduler stopped or that failed.

Ray's ``OptunaSearch`` tells Optuna that a trial ASHA stopped after 2 of 20 epochs is COMPLETE
with its epoch-2 value, as if final, and reports intermediate values at Tune's iteration counter,
which restarts at 1 after a restore. TPE then learns from partial results as if they were
finished ones. Here:

- every epoch's value is reported as an intermediate value at that epoch;
- a trial that ran all ``max_epochs`` is COMPLETE with its last value;
- a trial stopped early (by ASHA) is PRUNED, keeping its intermediate values;
- a trial that errored is PRUNED when it has intermediate values, else FAIL.

With several objectives (``metric: [val/acc, model/params]``), Optuna takes no intermediate
values: a trial that ran all ``max_epochs`` is COMPLETE with its last epoch's values, one stopped
early is PRUNED (Optuna's multi-objective TPE ranks pruned trials after complete ones), and the
epoch values it reached are kept in the trial's user attribute ``last_values``. Constraints
(``constraints: ["model/latency_ms <= 5"]``) are set on every COMPLETE and PRUNED trial as
Optuna's samplers read them (``Trial.set_constraint``), from the trial's last epoch; a metric it
never reported counts as broken (infinitely).

Each proposed configuration also carries the trial's seed (:mod:`tuning.config.seeding`), drawn from
the sweep's seed and Optuna's trial number.
"""

from __future__ import annotations

import logging
from typing import Any

from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.exc import SQLAlchemyError
from typing_extensions import override

from tuning._internals.optuna_search import OptunaSearchInternals
from tuning._internals.tune_state import SavedTrial
from tuning.config.seeding import trial_seed
from tuning.config.spec import Constraint, violations
from tuning.contracts import CONTINUES_KEY, GENERATION_METRIC, SEED_KEY
from tuning.errors import SweepError
from tuning.record import TrialRecord, is_finite_number
from tuning.record.study_file import StudyFile

logger = logging.getLogger(__name__)

# The layout of the searcher's saved state (Tune pickles it with the experiment); a resume refuses
# any other.
STATE_FORMAT = 1
# An Optuna trial's user attribute: the number of the earlier trial it trains longer.
CONTINUES_ATTR = "continues"


class TruthfulOptunaSearch(OptunaSearchInternals):
    """OptunaSearch that reports per epoch and tells stopped and failed trials as they are.

    Args:
        max_epochs: Epochs of a trial that runs to its end.
        seed: The sweep's seed, from which each trial's seed is drawn (None: no trial seeds).
        warm_start: Trials of an earlier sweep to put in the study before the first proposal
            (:func:`tuning.driver.warm_start.past_trials`).
        epoch_attr: The result key that counts completed epochs (survives restores).
        study_file: Where ended trials are copied for optuna-dashboard (None: nowhere).
        constraints: What a trial's last epoch must satisfy (a trial that does not ranks after
            those that do).
        **kwargs: Passed to ``OptunaSearch`` (sampler, metric, mode: a list of each for several
            objectives, ...).
    """

    def __init__(self, max_epochs: int, seed: int | None = None,
                 warm_start: list[FrozenTrial] | None = None, epoch_attr: str = "epoch",
                 study_file: StudyFile | None = None,
                 constraints: list[Constraint] | None = None, **kwargs: Any) -> None:
        # Set before OptunaSearch's __init__, which sets the study up when given a space.
        self._warm_start = list(warm_start or [])
        self._max_epochs = max_epochs
        self._epoch_attr = epoch_attr
        self._study_file = study_file
        self._constraints = list(constraints or [])
        self._last_epoch: dict[str, int] = {}
        # The last epoch's objective and constrained values of each running trial.
        self._last_values: dict[str, dict[str, float]] = {}
        self._trial_ids: dict[int, str] = {}  # Optuna's trial number -> Tune's trial id
        # Tune trials of a resumed sweep that Tune's saved state lost: the next new Tune trials
        # take their Optuna trials, in order (match_saved_trials).
        self._rehand: list[str] = []
        self._settled: set[str] = set()  # proposed in an earlier Tune run (settle)
        self._continuing: list[TrialRecord] = []  # to train longer (train_longer)
        super().__init__(**kwargs)
        self._seed = seed  # after: OptunaSearch's own (unused, its sampler is given) has this name
        self._format = STATE_FORMAT

    @override
    def restore(self, checkpoint_path: str) -> None:
        super().restore(checkpoint_path)
        found = self.__dict__.get("_format")
        if found != STATE_FORMAT:
            raise SweepError(
                f"{checkpoint_path}: the searcher's saved state is of format {found}, which this "
                f"lightsweep (format {STATE_FORMAT}) cannot read. Fix: resume it with the "
                "lightsweep that launched it, or launch a new sweep with --warm-start from it")

    @override
    def on_study_ready(self, study: Any) -> None:
        for trial in self._warm_start:
            study.add_trial(trial)
        self._copy_ended_trials()

    def _tune_ids(self) -> dict[int, str]:
        """Tune's trial id of each Optuna trial number, kept as trials are proposed."""
        return self._trial_ids

    def _copy_ended_trials(self) -> None:
        study_file = self._study_file
        if study_file is None:
            return
        try:
            study_file.add(self.study.get_trials(deepcopy=False), self._tune_ids())
        except (OSError, SQLAlchemyError) as error:
            # A view for optuna-dashboard: the next ended trial copies whatever is missing.
            logger.warning("%s not updated: %s", study_file.location, error)

    def match_saved_trials(self, trials: list[SavedTrial]) -> tuple[list[str], list[str]]:
        """Brings this searcher, restored for a resume, in line with the trials Tune restores.

        Tune saves the searcher with its trials, but a driver killed while the files were
        being uploaded leaves one newer than the other. A trial the searcher proposed that Tune
        lost is proposed again, configuration and seed, to the next new Tune trial (so a lost
        finished trial's record is adopted by it, as one Tune itself re-proposes). A trial Tune
        restores that the searcher never proposed gets an Optuna trial of its values, told how
        it ended if it did.

        Returns:
            The lost trial ids to be proposed again, and the trial ids given an Optuna trial.
        """
        restored = {t.trial_id for t in trials}
        proposed = self.proposed()
        settled = self.__dict__.get("_settled", set())  # of earlier Tune runs: not lost
        lost = [i for i in proposed if i not in restored and i not in settled]
        self._rehand = list(dict.fromkeys([*getattr(self, "_rehand", []), *lost]))
        known = set(proposed)
        adopted = []
        for trial in trials:
            if trial.trial_id in known:
                continue
            self.ask_with(trial.trial_id, {k: v for k, v in trial.config.items() if k != SEED_KEY})
            self.suggest(trial.trial_id)
            if trial.finished:
                self.on_trial_complete(trial.trial_id, trial.last_result,
                                       error=trial.status == "ERROR")
            adopted.append(trial.trial_id)
        return lost, adopted

    def train_longer(self, trials: list[TrialRecord], max_epochs: int) -> None:
        """Makes the next suggestions propose ``trials`` again, each to be trained on to
        ``max_epochs`` from where it stopped (``resume --max-epochs``).

        A finished Optuna trial cannot change, so each continued trial is told to Optuna as a
        new trial of the same values, whose intermediate values are its whole curve (the epochs
        it had, then the new ones), its user attribute ``continues`` naming the earlier one's
        number; the earlier trial stays as it was told.
        """
        self._max_epochs = max_epochs
        self._continuing = list(trials)

    def _continue(self, trial_id: str) -> TrialRecord | None:
        """The trial ``trial_id`` (a new Tune trial) trains longer, if one is still to: its
        Optuna trial is asked with that trial's values and told its epochs so far."""
        continuing = self._continuing
        if not continuing or trial_id in self.proposed():
            return None
        earlier = continuing.pop(0)
        numbers = {tune_id: number for number, tune_id in self._tune_ids().items()}
        self.ask_with(trial_id, {k: v for k, v in earlier.config.items() if k != SEED_KEY})
        trial = self.optuna_trial(trial_id)
        if earlier.trial_id in numbers:
            trial.set_user_attr(CONTINUES_ATTR, numbers[earlier.trial_id])
        metric = self._metrics()[0]
        for epoch in earlier.history:
            value = epoch.metrics.get(metric)
            if len(self._metrics()) == 1 and is_finite_number(value):
                trial.report(value, step=epoch.epoch)
        self._last_epoch[trial_id] = earlier.epochs
        return earlier

    def know_trials(self, earlier: TruthfulOptunaSearch) -> None:
        """Takes ``earlier``'s Tune trial ids of its Optuna trial numbers: this searcher's study
        began with that one's trials, number for number (a changed space, ``resume --sweep``)."""
        self._trial_ids.update(earlier._tune_ids())

    def settle(self) -> None:
        """Marks every trial proposed so far as of an earlier Tune run. An extended sweep
        (``resume --num-samples``) runs its new trials as a new Tune run that continues this
        searcher's study; that run's saved state holds none of the earlier trials, which a
        resume of it must not take for trials Tune lost."""
        self._settled = set(self.proposed())

    @override
    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        rehand = self._rehand
        if rehand and trial_id not in self.proposed():
            old = rehand.pop(0)
            self.hand_over(old, trial_id)
            if old in self._last_epoch:  # its epochs so far are Optuna's already
                self._last_epoch[trial_id] = self._last_epoch.pop(old)
            if old in self._last():
                self._last()[trial_id] = self._last().pop(old)
        earlier = self._continue(trial_id)
        config = super().suggest(trial_id)
        if not isinstance(config, dict):
            return config
        number = self.optuna_trial(trial_id).number
        if earlier is not None:  # the record it carries on: the leaderboard's trial
            self._tune_ids()[number] = earlier.trial_id
            config.update({k: v for k, v in earlier.config.items() if k == SEED_KEY})
            config[CONTINUES_KEY] = {"trial": earlier.trial_id, "from_epoch": earlier.epochs}
            return config
        self._tune_ids()[number] = trial_id
        if self._seed is not None:
            config[SEED_KEY] = trial_seed(self._seed, number)
        return config

    def _metrics(self) -> list[str]:
        return list(self.metric) if isinstance(self.metric, list) else [self.metric]

    def _watched(self) -> list[str]:
        return list(dict.fromkeys([*self._metrics(), *(c.metric for c in self._constraints)]))

    def _last(self) -> dict[str, dict[str, float]]:
        return self._last_values

    def _tell(self, trial_id: str, state: TrialState, values: list[float] | None = None) -> None:
        """Tells Optuna how the trial ended, with its constraints' values when it has any."""
        trial = self.optuna_trial(trial_id)
        last = self._last().pop(trial_id, {})
        if state != TrialState.FAIL:
            for name, violation in violations(getattr(self, "_constraints", []), last).items():
                trial.set_constraint(name, violation)
            if last and values is None and len(self._metrics()) > 1:
                trial.set_user_attr("last_values", last)
        if values is None:
            self.study.tell(trial, state=state)
        else:
            self.study.tell(trial, values[0] if len(values) == 1 else values)
        self.mark_completed(trial_id)
        self._copy_ended_trials()

    def _tell_stopped(self, trial_id: str) -> None:
        self._tell(trial_id, TrialState.PRUNED if self._last_epoch.get(trial_id) else TrialState.FAIL)

    @override
    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if self.is_completed(trial_id):
            return
        if result.get(GENERATION_METRIC):
            # Population-based training gave the trial another trial's weights and new values:
            # what it reports now no longer measures the values Optuna proposed. Those ran until
            # the exploit; Optuna hears the trial stopped there.
            self._tell_stopped(trial_id)
            return
        epoch = int(result.get(self._epoch_attr, 0))
        metrics = self._metrics()
        values = [result.get(m) for m in metrics]
        # A resumed run repeats its checkpoint's epoch: Optuna keeps one value per step.
        if epoch <= self._last_epoch.get(trial_id, 0) or not all(map(is_finite_number, values)):
            return
        if len(metrics) == 1:  # Optuna takes no intermediate values of several objectives
            self.optuna_trial(trial_id).report(values[0], step=epoch)
        self._last_epoch[trial_id] = epoch
        self._last()[trial_id] = {m: result[m] for m in self._watched()
                                  if is_finite_number(result.get(m))}

    @override
    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if self.is_completed(trial_id):  # told already (at a PBT exploit, or before a resume)
            return
        if result and not error:
            self.on_trial_result(trial_id, result)
            if self.is_completed(trial_id):  # told at its exploit
                return
        epochs = self._last_epoch.get(trial_id, 0)
        values = [result.get(m) for m in self._metrics()] if result else []
        if not error and epochs >= self._max_epochs and values and all(
                map(is_finite_number, values)):
            self._tell(trial_id, TrialState.COMPLETE, [float(v) for v in values if v is not None])
        else:
            self._tell(trial_id, TrialState.PRUNED if epochs else TrialState.FAIL)
