"""The chaos soak's short form (``python -m bench.chaos`` is the long one): a sweep whose Train
workers, trial processes and driver are SIGKILLed on a seeded schedule, the driver rerun as a
platform reruns it, ends with every trial finished, every epoch recorded once and in order,
each last checkpoint holding its trial's last reported metric, and Optuna told of each trial
once."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.chaos import check, run_sweep

pytestmark = [pytest.mark.ray]


@pytest.mark.timeout(900)
def test_a_sweep_under_kills_of_every_kind_ends_whole(tmp_path: Path) -> None:
    trials, epochs = 4, 6
    # Kills every 3-6 s: all four land while the sweep (about a minute on 2 CPUs) runs.
    kills, _, experiment, driver = run_sweep(tmp_path, trials, epochs, kills=4, driver_kills=1,
                                             seed=1, timeout_s=800, first_s=(3, 6),
                                             every_s=(3, 6))
    assert kills["driver"] == 1 and sum(kills.values()) == 4
    assert driver.runs == 2 and driver.codes[-1] == 0
    assert check(experiment, trials, epochs) == {
        "trials": trials, "trials_finished": trials, "epochs_duplicated": 0,
        "epochs_missing": 0, "epochs_out_of_order": 0,
        "final_checkpoint_matches_final_metric": 1.0, "optuna_trials_told_once": trials}
