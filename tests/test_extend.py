"""A finished sweep gains trials: ``resume EXPERIMENT --num-samples N`` continues its study."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from tests.conftest import REPO
from tuning import launch, leaderboard, resume
from tuning._internals.asha import record_earlier
from tuning.cli import main
from tuning.config.seeding import trial_seed
from tuning.config.spec import load_spec
from tuning.driver.sweep import _more_trials
from tuning.errors import SweepError
from tuning.record import Ledger
from tuning.record.study_file import STUDY_FILE, STUDY_NAME, TRIAL_ID_ATTR


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
    assert _more_trials(spec, None) is None and _more_trials(spec, 24) is None
    assert _more_trials(spec, 30) == 30
    with pytest.raises(SweepError, match="--num-samples: 20 is below the sweep's 24 trials"):
        _more_trials(spec, 20)
    pbt = load_spec(REPO / "search_spaces" / "mnist1d_pbt.yaml")
    with pytest.raises(SweepError, match="--num-samples: population-based training"):
        _more_trials(pbt, pbt.search.num_samples + 1)


def _history(ledger: Ledger) -> dict[str, tuple[str, int, list[tuple[int, dict, str | None]]]]:
    return {i: (t.status, t.added_by, [(e.epoch, e.metrics, e.checkpoint) for e in t.history])
            for i, t in ledger.trials.items()}


@pytest.mark.ray
@pytest.mark.timeout(600)
def test_a_finished_sweep_gains_trials_that_continue_its_study(
        ray_session, tmp_path: Path, capsys, caplog) -> None:
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        "module: lightning_modules.classifier:Classifier\n"
        "datamodule: lightning_modules.datamodules:DigitsDataModule\n"
        "module_args: {arch: mlp, input_shape: [8, 8], width: 16, depth: 1}\n"
        "space:\n"
        "  module.lr: {loguniform: [1e-4, 3e-1]}\n"
        "metric: val/acc\nmode: max\n"
        "search: {num_samples: 4, seed: 0, sampler_args: {n_startup_trials: 2}}\n"
        "scheduler: {max_epochs: 3, grace_period: 1, reduction_factor: 2}\n"
        "resources: {trial_runner: inline}\n"
        "trainer_args: {limit_train_batches: 8}\n"
    )
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
