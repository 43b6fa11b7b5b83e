from __future__ import annotations

import json
import pickle
from pathlib import Path

import optuna
import pytest
from ray import tune
from ray.tune import PlacementGroupFactory
from ray.tune.experiment import Trial
from ray.tune.search import ConcurrencyLimiter, SearchGenerator

from tuning.driver.searcher import TruthfulOptunaSearch
from tuning.driver.tune_state import (
    BACKUP_DIR,
    TuneStateBackup,
    match_saved_search,
    restore_whole_state,
)
from tuning.record.location import Location


def test_a_cut_short_state_file_is_put_back_from_its_last_whole_copy(tmp_path: Path) -> None:
    state = tmp_path / "experiment_state-2026-01-01_00-00-00.json"
    searcher = tmp_path / "searcher-state-2026-01-01_00-00-00.pkl"
    state.write_text(json.dumps({"trials": [1, 2]}))
    searcher.write_bytes(b"\x80\x05K\x01.")  # pickle.dumps(1)
    TuneStateBackup(tmp_path).on_step_end(iteration=1, trials=[])
    assert sorted(p.name for p in (tmp_path / BACKUP_DIR).iterdir()) == [state.name, searcher.name]

    state.write_text('{"trials": [1, 2, 3')  # the disk filled mid-write
    assert restore_whole_state(tmp_path) == [state.name]
    assert json.loads(state.read_text()) == {"trials": [1, 2]}
    assert searcher.read_bytes() == b"\x80\x05K\x01.", "a whole file is left alone"


def test_a_file_being_written_is_not_copied(tmp_path: Path) -> None:
    (tmp_path / "experiment_state-x.json").write_text('{"trials": [')
    TuneStateBackup(tmp_path).on_step_end(iteration=1, trials=[])
    assert not (tmp_path / BACKUP_DIR).exists()


def test_a_costly_copy_makes_the_next_one_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tune's state grows with the sweep: copying it every second would take over the driver.
    from tuning.driver import tune_state

    clock = [100.0]
    monkeypatch.setattr(tune_state.time, "monotonic", lambda: clock[0])
    real_write = tune_state.atomic_write_bytes

    def slow_write(path: Path, data: bytes) -> None:
        clock[0] += 1.0  # a copy that takes a second
        real_write(path, data)

    monkeypatch.setattr(tune_state, "atomic_write_bytes", slow_write)
    state = tmp_path / "experiment_state-x.json"
    backup = tmp_path / BACKUP_DIR / state.name
    keeper = TuneStateBackup(tmp_path)
    state.write_text(json.dumps({"trials": [1]}))
    keeper.on_step_end(iteration=1, trials=[])
    assert json.loads(backup.read_text()) == {"trials": [1]}

    state.write_text(json.dumps({"trials": [1, 2]}))
    clock[0] += 10.0
    keeper.on_step_end(iteration=2, trials=[])
    assert json.loads(backup.read_text()) == {"trials": [1]}, "copied again within 50 s"
    clock[0] += 1 / tune_state.BACKUP_SHARE
    keeper.on_step_end(iteration=3, trials=[])
    assert json.loads(backup.read_text()) == {"trials": [1, 2]}


def test_a_search_generators_state_is_backed_up_though_named_json(tmp_path: Path) -> None:
    # Tune names it .json but writes a pickle: it is whole when the pickle is.
    state = tmp_path / "search_gen_state-2026-01-01_00-00-00.json"
    state.write_bytes(pickle.dumps({"counter": 2}))
    TuneStateBackup(tmp_path).on_step_end(iteration=1, trials=[])
    assert (tmp_path / BACKUP_DIR / state.name).read_bytes() == state.read_bytes()


def _searcher() -> TruthfulOptunaSearch:
    search = TruthfulOptunaSearch(max_epochs=3, seed=0, metric="val/acc", mode="max",
                                  sampler=optuna.samplers.TPESampler(seed=0))
    search.set_search_properties("val/acc", "max", {"module.lr": tune.loguniform(1e-4, 1e-1)})
    return search


def _saved_trial(trial_id: str, config: dict, status: str) -> tuple[str, str]:
    trial = Trial("train", config=config, trial_id=trial_id, stub=True,
                  placement_group_factory=PlacementGroupFactory([{"CPU": 1}]))
    trial.create_placement_group_factory()
    trial.set_status(status)
    return trial.get_json_state()


def test_resume_gives_tunes_lost_trials_configurations_to_its_next_trials(tmp_path: Path) -> None:
    # What a driver killed mid-upload leaves: Tune's searcher saved after trial "c" was
    # proposed and "a" ended, its trials saved before either (files as Tune writes them).
    session = "2026-01-01_00-00-00"
    limiter = ConcurrencyLimiter(_searcher(), max_concurrent=2)
    generator = SearchGenerator(limiter)
    configs = {i: limiter.suggest(i) for i in "ab"}
    limiter.on_trial_complete("a", {"val/acc": 0.8, "epoch": 3})
    configs["c"] = limiter.suggest("c")
    generator.set_state({**generator.get_state(), "counter": 3})
    generator.save_to_dir(str(tmp_path), session)
    (tmp_path / f"experiment_state-{session}.json").write_text(json.dumps({
        "trial_data": [_saved_trial("a", configs["a"], "RUNNING"),
                       _saved_trial("b", configs["b"], "RUNNING")],
        "runner_data": {}, "stats": {}}))
    experiment = Location.parse(tmp_path)

    assert match_saved_search(experiment) == (["c"], [])

    # Restored as Tune restores it: the lost trial's configuration is the next one proposed,
    # and the concurrency limit counts the restored trials, not the lost one.
    restored = SearchGenerator(ConcurrencyLimiter(_searcher(), max_concurrent=2))
    restored.restore_from_dir(str(tmp_path))
    assert restored.get_state()["counter"] == 2
    assert restored.searcher.suggest("new") is None, "a and b hold both places"
    restored.searcher.on_trial_complete("b", {"val/acc": 0.5, "epoch": 3})
    assert restored.searcher.suggest("new") == configs["c"]
    assert match_saved_search(experiment) == (["c"], []), "unchanged until resumed"


def test_a_sweep_without_a_searcher_is_left_as_saved(tmp_path: Path) -> None:
    state = tmp_path / "experiment_state-2026-01-01_00-00-00.json"
    state.write_text(json.dumps({"trial_data": [], "runner_data": {}, "stats": {}}))
    assert match_saved_search(Location.parse(tmp_path)) == ([], [])
    assert sorted(p.name for p in tmp_path.iterdir()) == [state.name]
