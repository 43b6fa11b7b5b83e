"""A finished sweep gains trials: ``resume EXPERIMENT --num-samples N`` continues its study."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from optuna.trial import TrialState
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from tests.conftest import REPO
from tuning import launch, leaderboard, resume
from tuning._internals.asha import record_earlier
from tuning.cli import main
from tuning.config.seeding import trial_seed
from tuning.config.spec import load_spec
from tuning.driver.extension import (
    OUTSIDE_ATTR,
    check_changed_sweep,
    more_trials,
    refit,
    trials_to_train_longer,
)
from tuning.errors import SweepError
from tuning.record import EpochRecord, Ledger, TrialRecord
from tuning.record.study_file import NUMBER_ATTR, STUDY_FILE, STUDY_NAME, TRIAL_ID_ATTR


def _asha(mode: str) -> ASHAScheduler:
    scheduler = ASHAScheduler(time_attr="epoch", max_t=4, grace_period=1, reduction_factor=2)
    scheduler.set_search_properties("val/acc", mode)
    return scheduler


@pytest.mark.parametrize("mode", ["max", "min"])
def test_an_extensions_new_trials_are_ranked_against_the_earlier_ones_at_each_rung(
        mode: str) -> None:
    sign = 1 if mode == "max" else -1
    earlier = {f"e{i}": {1: sign * value, 2: sign * (value + 0.1)}
               for i, value in enumerate((0.6, 0.7, 0.8, 0.9))}
    new = SimpleNamespace(trial_id="n0", config={})
    weak = {"epoch": 1, "val/acc": sign * 0.5}
    alone = _asha(mode)
    alone.on_trial_add(None, new)
    assert alone.on_trial_result(None, new, weak) == TrialScheduler.CONTINUE  # an empty rung
    told = _asha(mode)
    record_earlier(told, earlier, mode)
    told.on_trial_add(None, new)
    assert told.on_trial_result(None, new, weak) == TrialScheduler.STOP
    strong = SimpleNamespace(trial_id="n1", config={})
    told.on_trial_add(None, strong)
    assert told.on_trial_result(None, strong, {"epoch": 1, "val/acc": sign * 0.95}) == \
        TrialScheduler.CONTINUE


def test_asking_for_fewer_trials_or_more_of_a_pbt_population_is_refused() -> None:
    spec = load_spec(REPO / "search_spaces" / "mnist1d_cnn.yaml")
    assert more_trials(spec, None) is None and more_trials(spec, 24) is None
    assert more_trials(spec, 30) == 30
    with pytest.raises(SweepError, match="--num-samples: 20 is below the sweep's 24 trials"):
        more_trials(spec, 20)
    pbt = load_spec(REPO / "search_spaces" / "mnist1d_pbt.yaml")
    with pytest.raises(SweepError, match="--num-samples: population-based training"):
        more_trials(pbt, pbt.search.num_samples + 1)


def _history(ledger: Ledger) -> dict[str, tuple[str, int, list[tuple[int, dict, str | None]]]]:
    return {i: (t.status, t.added_by, [(e.epoch, e.metrics, e.checkpoint) for e in t.history])
            for i, t in ledger.trials.items()}


def _ledger(*trials: tuple[str, str, list[float]]) -> Ledger:
    """A record of trials (id, status, val/acc per epoch, each with a checkpoint) of a sweep of
    at most 3 epochs."""
    spec = load_spec(REPO / "search_spaces" / "mnist1d_cnn.yaml",
                     {"scheduler.max_epochs": 3, "scheduler.grace_period": 1})
    ledger = Ledger(spec)
    for trial_id, status, values in trials:
        ledger.trials[trial_id] = TrialRecord(trial_id, status, history=[
            EpochRecord(epoch, {"val/acc": value}, checkpoint=f"/c/{trial_id}/{epoch}/c.ckpt")
            for epoch, value in enumerate(values, 1)])
    return ledger


def test_the_trials_trained_longer_are_the_best_that_ran_to_the_end_or_those_named() -> None:
    ledger = _ledger(("a", "completed", [0.5, 0.6, 0.7]), ("b", "stopped", [0.9]),
                     ("c", "completed", [0.6, 0.8, 0.9]), ("d", "completed", [0.1, 0.2, 0.3]))
    chosen = trials_to_train_longer
    assert [t.trial_id for t in chosen(ledger, 6)] == ["c", "a", "d"]  # best first
    assert [t.trial_id for t in chosen(ledger, 6, top=2)] == ["c", "a"]
    assert [t.trial_id for t in chosen(ledger, 6, named=["b"])] == ["b"]  # stopped, but named
    assert chosen(ledger, None) == ()
    for args, says in [((3,), "--max-epochs: 3 is not above the sweep's 3 epochs per trial"),
                       ((6, None, ["x"]), "--trials: the sweep has no trial x"),
                       ((None, 2), "--top: it chooses the trials to train longer")]:
        with pytest.raises(SweepError, match=says):
            chosen(ledger, *args)
    stopped = _ledger(("b", "stopped", [0.9]))
    with pytest.raises(SweepError, match="--max-epochs: no trial of the sweep ran its 3 epochs"):
        chosen(stopped, 6)
    stopped.trials["b"].history[0].checkpoint = None
    with pytest.raises(SweepError, match="--trials: b kept no checkpoint to go on from"):
        chosen(stopped, 6, named=["b"])


def _digits_sweep(path: Path, samples: int, scheduler: str, lr: tuple[float, float] = (1e-4, 0.3),
                  runner: str = "inline", module: str = "classifier:Classifier",
                  search: str = "") -> Path:
    """A sweep file of small digits trials: ``module.lr`` searched in ``lr``."""
    path.write_text(
        f"module: lightning_modules.{module}\n"
        "datamodule: lightning_modules.datamodules:DigitsDataModule\n"
        "module_args: {arch: mlp, input_shape: [8, 8], width: 16, depth: 1}\n"
        "space:\n"
        f"  module.lr: {{loguniform: [{lr[0]}, {lr[1]}]}}\n"
        "metric: val/acc\nmode: max\n"
        f"search: {{num_samples: {samples}, seed: 0{search}}}\n"
        f"scheduler: {scheduler}\n"
        f"resources: {{trial_runner: {runner}}}\n"
        "trainer_args: {limit_train_batches: 6}\n")
    return path


@pytest.mark.ray
@pytest.mark.timeout(600)
def test_a_finished_sweep_gains_trials_that_continue_its_study(
        ray_session, tmp_path: Path, capsys, caplog) -> None:
    sweep = _digits_sweep(tmp_path / "sweep.yaml", 4,
                          "{max_epochs: 3, grace_period: 1, reduction_factor: 2}",
                          search=", sampler_args: {n_startup_trials: 2}")
    path = Path(launch(sweep, storage=str(tmp_path / "runs"), name="grow", wandb=False).path.uri)
    before = Ledger.load(path)
    assert len(before.trials) == 4
    files = {f: f.stat().st_mtime_ns for i in before.trials
             for f in (path / f"trial_{i}").rglob("*") if f.is_file()}
    assert any(f.name == "checkpoint.ckpt" for f in files)

    outcome = resume(path, num_samples=7)
    assert (outcome.finished + outcome.errored, outcome.unfinished) == (7, 0)
    after = Ledger.load(path)
    assert after.spec.search.num_samples == 7
    # The earlier trials, their records and checkpoints, as they were.
    earlier = _history(before)
    assert {i: h for i, h in _history(after).items() if i in earlier} == earlier
    assert {f: f.stat().st_mtime_ns for f in files if f.is_file()} == files
    new = [t for t in after.trials.values() if t.trial_id not in before.trials]
    assert len(new) == 3 and {t.added_by for t in new} == {1}
    # Numbered, and seeded, on from the earlier trials, as one sweep of 7 would.
    assert sorted(t.config["seed"] for t in new) == sorted(trial_seed(0, n) for n in range(4, 7))
    # One study: optuna-dashboard's copy holds all 7, each told how it ended.
    study = optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{path / STUDY_FILE}")
    expected = {"completed": "COMPLETE", "stopped": "PRUNED"}
    assert {t.user_attrs[TRIAL_ID_ATTR]: t.state.name for t in study.trials} == {
        i: expected[t.status] for i, t in after.trials.items()}
    assert sorted(t.number for t in study.trials) == list(range(7))
    rows = leaderboard(path)
    assert sorted(r["added_by"] for r in rows) == [0] * 4 + [1] * 3
    capsys.readouterr()
    assert main(["leaderboard", str(path)]) == 0
    table = capsys.readouterr().out
    assert "added by" in table and table.count("extension 1") == 3

    # Finished as extended: resuming runs nothing; asking for fewer is refused.
    resume(path)
    assert set(Ledger.load(path).trials) == set(after.trials)
    assert main(["resume", str(path), "--num-samples", "5"]) == 2
    assert "--num-samples: 5 is below the sweep's 7 trials" in caplog.text


@pytest.mark.ray
@pytest.mark.timeout(600)
@pytest.mark.parametrize("runner", ["train", "inline"])
def test_the_best_trials_train_longer_from_their_checkpoints_under_their_own_ids(
        ray_session, tmp_path: Path, caplog, runner: str) -> None:
    sweep = _digits_sweep(tmp_path / "sweep.yaml", 3, "{name: fifo, max_epochs: 2}",
                          lr=(1e-3, 3e-2), runner=runner)
    path = Path(launch(sweep, storage=str(tmp_path / "runs"), name="longer", wandb=False).path.uri)
    before = Ledger.load(path)
    best_two = [r["trial_id"] for r in leaderboard(path)[:2]]

    outcome = resume(path, max_epochs=4, top=2)
    assert (outcome.finished, outcome.unfinished) == (3, 0)
    after = Ledger.load(path)
    assert after.spec.scheduler.max_epochs == 4 and set(after.trials) == set(before.trials)
    for trial_id, record in after.trials.items():
        earlier = before.trials[trial_id]
        # The epochs it had stay as they were; the continued ones are numbered on.
        assert [(e.epoch, e.metrics) for e in record.history[:2]] == [
            (e.epoch, e.metrics) for e in earlier.history]
        if trial_id not in best_two:
            assert record.epochs == 2 and record.status == "completed"
            continue
        assert [e.epoch for e in record.history] == [1, 2, 3, 4]
        assert record.status == "completed"
        loss = {e.epoch: e.metrics["train/loss"] for e in record.history}
        # From the checkpoint, optimizer state and all, not from scratch: the third epoch's
        # loss goes on from the second's, well below the first's.
        assert loss[3] < loss[1] and loss[3] <= loss[2] * 1.2, loss
        # Its own Train run's, under its directory; inline, Tune's (of the run that trained on).
        assert all(e.checkpoint and (runner == "inline" or f"trial_{trial_id}" in e.checkpoint)
                   for e in record.history[2:])
        assert Path(record.history[-1].checkpoint or "").is_file()
    # Optuna: each continued trial told as a new trial of the same values, its whole curve.
    study = optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{path / STUDY_FILE}")
    continued = [t for t in study.trials if "continues" in t.user_attrs]
    assert sorted(t.user_attrs[TRIAL_ID_ATTR] for t in continued) == sorted(best_two)
    by_number = {t.user_attrs[NUMBER_ATTR]: t for t in study.trials}
    for trial in continued:
        assert trial.state.name == "COMPLETE" and sorted(trial.intermediate_values) == [1, 2, 3, 4]
        earlier = by_number[trial.user_attrs["continues"]]
        assert trial.params == earlier.params and earlier.state.name == "COMPLETE"
        assert earlier.user_attrs[TRIAL_ID_ATTR] == trial.user_attrs[TRIAL_ID_ATTR]

    resume(path)  # finished as extended: nothing to run
    assert Ledger.load(path).trials[best_two[0]].epochs == 4
    assert main(["resume", str(path), "--max-epochs", "3"]) == 2
    assert "--max-epochs: 3 is not above the sweep's 4 epochs per trial" in caplog.text
    assert main(["resume", str(path), "--top", "1"]) == 2
    assert "--top: it chooses the trials to train longer. Fix: give --max-epochs M too" \
        in caplog.text


def test_a_changed_sweep_may_change_its_space_but_not_what_its_trials_ran_with() -> None:
    before = load_spec(REPO / "search_spaces" / "mnist1d_cnn.yaml")
    space = {**before.space, "module.lr": {"loguniform": [1e-3, 1e-2]}}
    check_changed_sweep(before, before.with_overrides({
        "space": space, "search.num_samples": 40, "scheduler.grace_period": 2}))
    for change, says in [({"metric": "val/loss", "mode": "min"}, "--sweep: metric differs"),
                         ({"module": "pkg.mod:Other"}, "--sweep: module differs"),
                         ({"module_args.width": 8}, "--sweep: module_args differs"),
                         ({"scheduler.max_epochs": 50}, "--sweep: scheduler.max_epochs differs")]:
        with pytest.raises(SweepError, match=says):
            check_changed_sweep(before, before.with_overrides(change))


def test_earlier_trials_go_on_in_a_changed_space_where_they_fit_it_and_keep_their_numbers() -> None:
    spec = load_spec(REPO / "search_spaces" / "mnist1d_cnn.yaml", {
        "space": {"module.lr": {"loguniform": [1e-3, 1e-1]},
                  "datamodule.batch_size": {"choice": [32, 64]}}})
    narrower = spec.with_overrides({"space": {"module.lr": {"loguniform": [1e-2, 1e-1]},
                                              "datamodule.batch_size": {"choice": [32, 64]},
                                              "module.width": {"choice": [16, 32]}}})
    study = optuna.create_study(direction="maximize")
    for lr, state in [(0.05, TrialState.COMPLETE), (0.002, TrialState.COMPLETE),
                      (0.03, TrialState.PRUNED), (0.04, TrialState.FAIL)]:
        params = {"module.lr": lr, "datamodule.batch_size": 32}
        study.add_trial(optuna.trial.create_trial(
            state=state, params=params, value=0.9 if state == TrialState.COMPLETE else None,
            distributions=spec.search_space.optuna_distributions(params),
            intermediate_values={1: 0.5}))
    fitted = refit(study.trials, narrower.search_space)
    assert [t.state for t in fitted] == [TrialState.COMPLETE, TrialState.FAIL,
                                         TrialState.PRUNED, TrialState.FAIL]
    assert [OUTSIDE_ATTR in t.user_attrs for t in fitted] == [False, True, False, True]
    kept = fitted[0]
    assert kept.params == {"module.lr": 0.05, "datamodule.batch_size": 32}
    assert kept.distributions["module.lr"].low == 1e-2 and kept.intermediate_values == {1: 0.5}
    # The new study takes them in order: the next trial is number 4, seeded as the 5th.
    new = optuna.create_study(direction="maximize")
    for trial in fitted:
        new.add_trial(trial)
    assert new.ask().number == 4


@pytest.mark.ray
@pytest.mark.timeout(600)
def test_a_changed_sweep_file_proposes_from_its_new_space_and_keeps_every_earlier_trial(
        ray_session, tmp_path: Path, caplog) -> None:
    def write(name: str, low: float, samples: int, module: str = "classifier:Classifier") -> Path:
        return _digits_sweep(tmp_path / name, samples,
                             "{max_epochs: 2, grace_period: 1, reduction_factor: 2}",
                             lr=(low, 0.3), module=module)

    caplog.set_level(logging.INFO, logger="tuning")
    path = Path(launch(write("first.yaml", 1e-4, 4), storage=str(tmp_path / "runs"),
                       name="changed", wandb=False).path.uri)
    before = Ledger.load(path)
    assert main(["resume", str(path), "--sweep", str(write("other.yaml", 1e-2, 6, "nets:MLP"))]) \
        == 2
    assert "--sweep: module differs from the experiment's" in caplog.text

    outcome = resume(path, sweep=write("second.yaml", 1e-2, 6))
    assert (outcome.finished + outcome.errored, outcome.unfinished) == (6, 0)
    after = Ledger.load(path)
    assert after.spec.space["module.lr"] == {"loguniform": [1e-2, 3e-1]}
    earlier = _history(before)
    assert {i: h for i, h in _history(after).items() if i in earlier} == earlier
    new = [t for t in after.trials.values() if t.trial_id not in before.trials]
    assert len(new) == 2 and all(1e-2 <= t.config["module.lr"] <= 3e-1 for t in new)
    assert sorted(t.config["seed"] for t in new) == sorted(trial_seed(0, n) for n in (4, 5))
    study = optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{path / STUDY_FILE}")
    assert len(study.trials) == 6  # the earlier four as they were told, then the new two
    outside = sum(t.config["module.lr"] < 1e-2 for t in before.trials.values())
    assert f"{4 - outside} of the 4 earlier trials fit it" in caplog.text


@pytest.mark.ray
@pytest.mark.timeout(600)
def test_an_interrupted_sweep_extended_is_finished_first_then_gains_its_trials(
        tmp_path: Path) -> None:
    from tests.processes import finish, start_driver, wait_for

    sweep = _digits_sweep(tmp_path / "sweep.yaml", 3, "{name: fifo, max_epochs: 3}",
                          runner="train")
    path = tmp_path / "runs" / "cut"
    first = start_driver(["launch", str(sweep), "--storage", str(tmp_path / "runs"), "--name",
                          "cut", "--no-wandb"], cwd=tmp_path, log=tmp_path / "launch.log")
    try:
        def one_ended() -> bool:
            try:
                ledger = Ledger.load(path)
            except SweepError:  # nothing recorded yet
                return False
            return any(t.status == "completed" for t in ledger.trials.values())

        wait_for(one_ended, 300, "a completed trial")
        os.kill(first.pid, signal.SIGKILL)
    finally:
        finish(first, tmp_path / "launch.log", timeout_s=60)
    interrupted = Ledger.load(path)
    assert sum(t.status == "completed" for t in interrupted.trials.values()) < 3

    second = start_driver(["resume", str(path), "--num-samples", "5"], cwd=tmp_path,
                          log=tmp_path / "resume.log")
    output = finish(second, tmp_path / "resume.log", timeout_s=480)
    assert second.returncode == 0, output[-3000:]
    assert output.index("resuming ") < output.index("extending ")
    after = Ledger.load(path)
    assert after.spec.search.num_samples == 5
    assert sorted(t.added_by for t in after.trials.values()) == [0, 0, 0, 1, 1]
    assert all(t.status == "completed" and t.epochs == 3 for t in after.trials.values())
    assert sorted(t.config["seed"] for t in after.trials.values() if t.added_by) == sorted(
        trial_seed(0, n) for n in (3, 4))
