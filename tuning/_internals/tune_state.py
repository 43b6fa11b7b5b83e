"""Ray Tune's saved experiment state, read and matched as Tune restores it.

Tune saves its trials and its search generator together but uploads them one file at a time; a
driver killed in between leaves one newer than the other. Before a resume, lightsweep reads the
trials Tune will restore and makes the generator agree with them. Private: the experiment state's
``trial_data`` list, read as Tune's ``TuneController._restore_trials`` does, and the keys of
``SearchGenerator.get_state`` and of its ``ConcurrencyLimiter``'s. Public way: none
(``ExperimentAnalysis`` reads every trial's results to say which trials there are); where this
layer is off, a resume restores Tune's files as they are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tuning._internals.probe import layer

LAYER = "tune-state-matching"


@layer(LAYER, "matching Tune's saved searcher to its saved trials before a resume",
       "a resume restores Tune's files as they are", execution=False)
def _probe() -> None:
    from ray.tune.experiment import Trial

    for name in ("from_json_state", "restore_run_metadata"):
        getattr(Trial, name)


@dataclass(frozen=True)
class SavedTrial:
    """One trial of Tune's saved experiment state, as a restore brings it back."""

    trial_id: str
    status: str  # Tune's: PENDING, RUNNING, PAUSED, TERMINATED or ERROR
    config: dict[str, Any]
    last_result: dict[str, Any]

    @property
    def finished(self) -> bool:
        return self.status in ("TERMINATED", "ERROR")


def saved_trials(experiment_state: bytes) -> list[SavedTrial]:
    """The trials of one of Tune's experiment state files, in the order Tune created them."""
    from ray.tune.experiment import Trial

    trials = []
    for trial_state, run_metadata in json.loads(experiment_state)["trial_data"]:
        # The status as saved: a restored Trial turns RUNNING into PENDING.
        status = json.loads(trial_state)["status"]
        trial = Trial.from_json_state(trial_state, stub=True)
        trial.restore_run_metadata(run_metadata)
        trials.append(SavedTrial(trial.trial_id, status, dict(trial.config),
                                 dict(trial.last_result or {})))
    return trials


def search_generator_matching(saved: bytes, trials: list[SavedTrial]) -> bytes | None:
    """Tune's saved search-generator state made to agree with its saved ``trials``: proposals
    counted as there are trials, and those not finished live in the concurrency limit. None
    where it agrees already.

    A count ahead of the trials ends the sweep short of ``num_samples``; a trial live in the
    limit that Tune never restores holds a place of ``max_concurrent_trials`` for ever."""
    import ray.cloudpickle as cloudpickle

    state = cloudpickle.loads(saved)
    changed = state["counter"] != len(trials)
    state["counter"] = len(trials)
    limiter = state.get("name:ConcurrencyLimiter")
    if limiter is not None:
        live = {t.trial_id for t in trials if not t.finished}
        changed = changed or limiter["live_trials"] != live
        limiter["live_trials"] = live
        limiter["num_unfinished_live_trials"] = len(live)
    return cloudpickle.dumps(state) if changed else None
