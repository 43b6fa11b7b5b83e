"""Optuna hears the truth: stopped trials PRUNED with their per-epoch values, failures FAIL."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState
from ray import tune

from tuning._internals.tune_state import SavedTrial
from tuning.config.seeding import trial_seed
from tuning.config.spec import Constraint
from tuning.contracts import SEED_KEY
from tuning.driver.searcher import TruthfulOptunaSearch


@pytest.fixture
def searcher() -> TruthfulOptunaSearch:
    search = TruthfulOptunaSearch(
        max_epochs=3, metric="val/acc", mode="max",
        sampler=optuna.samplers.TPESampler(seed=0),
    )
    search.set_search_properties("val/acc", "max", {"module.lr": tune.loguniform(1e-4, 1e-1)})
    return search


def _states(searcher: TruthfulOptunaSearch) -> list[tuple[str, float | None, dict[int, float]]]:
    return [(t.state.name, t.value, t.intermediate_values) for t in searcher.study.trials]


def test_full_length_trial_is_complete_with_every_epoch(searcher) -> None:
    searcher.suggest("a")
    for epoch, value in ((1, 0.5), (2, 0.6), (3, 0.7)):
        searcher.on_trial_result("a", {"val/acc": value, "epoch": epoch, "training_iteration": 1})
    searcher.on_trial_complete("a", {"val/acc": 0.7, "epoch": 3})
    assert _states(searcher) == [("COMPLETE", 0.7, {1: 0.5, 2: 0.6, 3: 0.7})]


def test_trial_stopped_early_is_pruned_not_complete(searcher) -> None:
    searcher.suggest("b")
    searcher.on_trial_result("b", {"val/acc": 0.3, "epoch": 1})
    searcher.on_trial_complete("b", {"val/acc": 0.3, "epoch": 1})
    [(state, _, intermediate)] = _states(searcher)
    assert (state, intermediate) == ("PRUNED", {1: 0.3})


def test_failed_trial_is_pruned_with_partial_results_else_failed(searcher) -> None:
    searcher.suggest("c")
    searcher.suggest("d")
    searcher.on_trial_result("c", {"val/acc": 0.2, "epoch": 1})
    searcher.on_trial_complete("c", {"val/acc": 0.2, "epoch": 1}, error=True)
    searcher.on_trial_complete("d", None, error=True)
    assert [s[0] for s in _states(searcher)] == ["PRUNED", "FAIL"]


def test_epoch_repeated_after_a_resume_is_reported_once(searcher) -> None:
    searcher.suggest("e")
    for epoch in (1, 2, 2, 3):  # a resumed run re-sends its checkpoint's epoch
        searcher.on_trial_result("e", {"val/acc": 0.1 * epoch, "epoch": epoch,
                                       "training_iteration": 1})
    searcher.on_trial_complete("e", {"val/acc": 0.3, "epoch": 3})
    [trial] = searcher.study.trials
    assert trial.state is TrialState.COMPLETE
    assert sorted(trial.intermediate_values) == [1, 2, 3]


def test_a_trial_pbt_moved_is_pruned_where_its_proposed_values_stopped(searcher) -> None:
    # Population-based training gave the trial another's weights and values after epoch 2:
    # Optuna's proposal ran for two epochs, and what follows measures something else.
    searcher.suggest("a")
    for epoch, value in ((1, 0.5), (2, 0.6)):
        searcher.on_trial_result("a", {"val/acc": value, "epoch": epoch})
    for epoch, value in ((3, 0.9), (4, 0.95)):
        searcher.on_trial_result("a", {"val/acc": value, "epoch": epoch, "pbt/generation": 1})
    searcher.on_trial_complete("a", {"val/acc": 0.95, "epoch": 4, "pbt/generation": 1})
    assert _states(searcher) == [("PRUNED", 0.6, {1: 0.5, 2: 0.6})]


def _seeded(seed: int) -> TruthfulOptunaSearch:
    search = TruthfulOptunaSearch(max_epochs=3, seed=seed, metric="val/acc", mode="max",
                                  sampler=optuna.samplers.TPESampler(seed=seed,
                                                                     n_startup_trials=2))
    search.set_search_properties("val/acc", "max", {"module.lr": tune.loguniform(1e-4, 1e-1)})
    return search


def _run(search: TruthfulOptunaSearch, trials: int) -> list[dict]:
    """Proposes ``trials`` configurations, each told a result that depends on it alone."""
    configs = []
    for n in range(trials):
        config = search.suggest(f"t{n}")
        assert config is not None
        configs.append(config)
        value = 1.0 - abs(config["module.lr"] - 0.01)
        for epoch in (1, 2, 3):
            search.on_trial_result(f"t{n}", {"val/acc": value, "epoch": epoch})
        search.on_trial_complete(f"t{n}", {"val/acc": value, "epoch": 3})
    return configs


def test_each_trial_gets_its_own_seed_drawn_from_the_sweeps() -> None:
    configs = _run(_seeded(0), 5)
    assert [c[SEED_KEY] for c in configs] == [trial_seed(0, n) for n in range(5)]
    assert len({c[SEED_KEY] for c in configs}) == 5
    assert trial_seed(1, 0) != trial_seed(0, 0)


def test_same_seed_and_same_results_propose_the_same_configurations() -> None:
    # Past TPE's random start-up trials too: the model it fits is seeded and fed alike.
    assert _run(_seeded(7), 5) == _run(_seeded(7), 5)
    assert _run(_seeded(7), 5) != _run(_seeded(8), 5)


def _run_from(search: TruthfulOptunaSearch, first: int, trials: int) -> list[dict]:
    configs = []
    for n in range(first, first + trials):
        config = search.suggest(f"t{n}")
        assert config is not None
        configs.append(config)
        value = 1.0 - abs(config["module.lr"] - 0.01)
        # Every other trial stopped early: its values reach the study as PRUNED.
        epochs = (1, 2, 3) if n % 2 == 0 else (1,)
        for epoch in epochs:
            search.on_trial_result(f"t{n}", {"val/acc": value, "epoch": epoch})
        search.on_trial_complete(f"t{n}", {"val/acc": value, "epoch": epochs[-1]})
    return configs


def test_an_extended_sweep_proposes_what_one_run_of_all_its_trials_would(tmp_path) -> None:
    from tuning.driver.tune_state import continue_searcher
    from tuning.record.location import Location

    at_once = _run_from(_seeded(5), 0, 8)
    first = _seeded(5)
    in_two = _run_from(first, 0, 4)
    first.save(str(tmp_path / "searcher-state-2026-12-06_07-00-00.pkl"))  # as Tune saves it
    continued = _seeded(5)  # the extension builds its searcher anew, then loads the state
    assert continue_searcher(Location.parse(str(tmp_path)), continued)
    in_two += _run_from(continued, 4, 4)
    assert in_two == at_once
    assert [c[SEED_KEY] for c in in_two] == [trial_seed(5, n) for n in range(8)]
    # The study went on: every earlier trial, pruned or complete, is in it as it was told.
    assert [(t.number, t.state.name) for t in continued.study.trials] == [
        (n, "COMPLETE" if n % 2 == 0 else "PRUNED") for n in range(8)]


def test_a_resumed_extension_does_not_take_the_earlier_runs_trials_for_lost_ones(
        tmp_path) -> None:
    from tuning.driver.tune_state import continue_searcher
    from tuning.record.location import Location

    first = _seeded(2)
    _run_from(first, 0, 3)
    first.save(str(tmp_path / "searcher-state-2026-12-06_07-00-00.pkl"))
    extension = _seeded(2)
    continue_searcher(Location.parse(str(tmp_path)), extension)
    new = extension.suggest("t3")
    # The extension's own Tune run saved only its trial: the earlier three are not lost.
    assert extension.match_saved_trials([_saved("t3", new)]) == ([], [])
    assert continue_searcher(Location.parse(str(tmp_path / "none")), _seeded(2)) is False


def test_a_searchers_saved_state_of_another_format_is_refused_naming_the_fix(
        searcher, tmp_path) -> None:
    from tuning.driver.searcher import STATE_FORMAT, TruthfulOptunaSearch
    from tuning.errors import SweepError

    searcher.suggest("a")
    saved = tmp_path / "searcher-state.pkl"
    searcher.save(str(saved))
    restored = TruthfulOptunaSearch.__new__(TruthfulOptunaSearch)
    restored.restore(str(saved))  # its own format: read back whole
    assert restored._format == STATE_FORMAT and restored.proposed() == ["a"]
    searcher._format = STATE_FORMAT + 1  # as a later lightsweep would save it
    searcher.save(str(saved))
    with pytest.raises(SweepError, match=f"format {STATE_FORMAT + 1}.*Fix: resume it with"):
        TruthfulOptunaSearch.__new__(TruthfulOptunaSearch).restore(str(saved))


def _saved(trial_id: str, config: dict, status: str = "RUNNING",
           last_result: dict | None = None) -> SavedTrial:
    return SavedTrial(trial_id, status, config, last_result or {})


def test_a_trial_tunes_saved_state_lost_is_proposed_again_to_the_next_new_trial() -> None:
    # Tune's saved trials are older than its saved searcher (the driver was killed between the
    # uploads): "a" and "c" were proposed after Tune last saved its trials.
    search = _seeded(3)
    configs = {i: search.suggest(i) for i in "abc"}
    for epoch in (1, 2, 3):
        search.on_trial_result("a", {"val/acc": 0.5 + epoch / 10, "epoch": epoch})
    search.on_trial_complete("a", {"val/acc": 0.8, "epoch": 3})
    search.on_trial_result("c", {"val/acc": 0.4, "epoch": 1})

    assert search.match_saved_trials([_saved("b", configs["b"])]) == (["a", "c"], [])
    assert search.match_saved_trials([_saved("b", configs["b"])]) == (["a", "c"], []), "again"
    # The next new trials run the lost ones' configurations, seeds included, in their order.
    assert search.suggest("a2") == configs["a"]
    assert search.suggest("c2") == configs["c"]
    fresh = search.suggest("d")
    assert fresh is not None and fresh[SEED_KEY] == trial_seed(3, 3)
    # Optuna keeps one trial each: "a" stays told, "c" goes on from its first epoch.
    search.on_trial_complete("a2", {"val/acc": 0.8, "epoch": 3})
    search.on_trial_result("c2", {"val/acc": 0.4, "epoch": 1})  # trained again from scratch
    search.on_trial_result("c2", {"val/acc": 0.6, "epoch": 2})
    assert [(t.number, t.state.name) for t in search.study.trials] == [
        (0, "COMPLETE"), (1, "RUNNING"), (2, "RUNNING"), (3, "RUNNING")]
    assert search.study.trials[2].intermediate_values == {1: 0.4, 2: 0.6}


def test_a_restored_trial_the_searcher_never_proposed_gets_an_optuna_trial_of_its_values(
        searcher) -> None:
    # Tune's saved trials are newer than its saved searcher: "x" ended and "y" started since.
    a = searcher.suggest("a")
    restored = [
        _saved("a", a),
        _saved("x", {"module.lr": 0.003, SEED_KEY: 1}, "TERMINATED", {"val/acc": 0.9, "epoch": 3}),
        _saved("y", {"module.lr": 0.02, SEED_KEY: 2}, "RUNNING", {"val/acc": 0.3, "epoch": 1}),
    ]
    assert searcher.match_saved_trials(restored) == ([], ["x", "y"])
    assert searcher.match_saved_trials(restored) == ([], []), "matched already"
    searcher.on_trial_result("y", {"val/acc": 0.5, "epoch": 2})  # Tune resumes it
    assert [(t.state.name, t.params, t.value) for t in searcher.study.trials] == [
        ("RUNNING", a, None),
        ("COMPLETE", {"module.lr": 0.003}, 0.9),
        ("RUNNING", {"module.lr": 0.02}, None),
    ]
    assert searcher.study.trials[2].intermediate_values == {2: 0.5}
    assert searcher.suggest("z") is not None and len(searcher.study.trials) == 4


@pytest.fixture
def two_objectives() -> TruthfulOptunaSearch:
    search = TruthfulOptunaSearch(
        max_epochs=2, metric=["val/acc", "model/params"], mode=["max", "min"],
        constraints=[Constraint(metric="model/latency_ms", op="<=", bound=5.0)],
        sampler=optuna.samplers.TPESampler(seed=0),
    )
    search.set_search_properties(None, None, {"module.lr": tune.loguniform(1e-4, 1e-1)})
    return search


def _epoch(epoch: int, acc: float, params: float, latency: float | None = 1.0) -> dict:
    return {"epoch": epoch, "val/acc": acc, "model/params": params,
            **({"model/latency_ms": latency} if latency is not None else {})}


def test_two_objectives_a_full_trial_is_complete_with_its_last_values(two_objectives) -> None:
    two_objectives.suggest("a")
    two_objectives.on_trial_result("a", _epoch(1, 0.5, 1000.0))
    two_objectives.on_trial_complete("a", _epoch(2, 0.7, 1000.0, latency=7.0))
    [trial] = two_objectives.study.trials
    assert two_objectives.study.directions == [optuna.study.StudyDirection.MAXIMIZE,
                                               optuna.study.StudyDirection.MINIMIZE]
    assert (trial.state.name, trial.values) == ("COMPLETE", [0.7, 1000.0])
    assert trial.constraints == {"model/latency_ms <= 5": 2.0}  # broken by 2 ms


def test_two_objectives_a_stopped_trial_is_pruned_with_what_it_reached(two_objectives) -> None:
    two_objectives.suggest("b")
    two_objectives.on_trial_result("b", _epoch(1, 0.4, 500.0, latency=None))
    two_objectives.on_trial_complete("b", _epoch(1, 0.4, 500.0, latency=None))
    [trial] = two_objectives.study.trials
    assert trial.state.name == "PRUNED"
    assert trial.user_attrs["last_values"] == {"val/acc": 0.4, "model/params": 500.0}
    # It never reported the constrained metric: nothing shows that the constraint holds.
    assert trial.constraints == {"model/latency_ms <= 5": float("inf")}


def test_two_objectives_the_sampler_proposes_after_told_trials(two_objectives) -> None:
    for n in range(12):  # past TPE's random start-up
        config = two_objectives.suggest(f"t{n}")
        assert 1e-4 <= config["module.lr"] <= 1e-1
        two_objectives.on_trial_result(f"t{n}", _epoch(1, 0.5, 1000.0 * n))
        two_objectives.on_trial_complete(f"t{n}", _epoch(2, 0.6 + 0.01 * n, 1000.0 * n))
    assert {t.state.name for t in two_objectives.study.trials} == {"COMPLETE"}
    assert two_objectives.suggest("next") is not None
