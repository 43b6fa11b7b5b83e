"""Warm starts: an earlier sweep's ended trials, told to the new study as Optuna recorded them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.conftest import REPO, SweepWriter
from tuning.config.seeding import trial_seed
from tuning.config.spec import SweepSpec, load_spec
from tuning.contracts import SEED_KEY
from tuning.driver.searcher import TruthfulOptunaSearch
from tuning.driver.warm_start import past_trials
from tuning.errors import SweepError
from tuning.record import EpochRecord, Ledger, TrialRecord
from tuning.record.location import Location


def _record(trial_id: str, status: str, lr: float, accs: list[float]) -> TrialRecord:
    history = [EpochRecord(i + 1, {"val/acc": a}) for i, a in enumerate(accs)]
    return TrialRecord(trial_id, status=status, history=history,
                       config={"module.lr": lr, "datamodule.batch_size": 32, SEED_KEY: 1})


def _earlier_sweep(spec: SweepSpec, root: Path) -> Path:
    """An ended sweep of ``spec`` (4 epochs at most): one trial of each kind."""
    Ledger(spec, {t.trial_id: t for t in [
        _record("done", "completed", 0.01, [0.5, 0.7, 0.8, 0.9]),
        _record("cut", "stopped", 0.002, [0.3]),
        _record("boom", "errored", 0.09, []),
        _record("live", "running", 0.05, [0.4]),  # not ended: left out
    ]}).save(Location.parse(str(root)))
    return root


def test_ended_trials_reach_the_study_as_optuna_would_have_recorded_them(
    write_sweep: SweepWriter, tmp_path: Path
) -> None:
    spec = load_spec(write_sweep())
    trials = past_trials(_earlier_sweep(spec, tmp_path / "earlier"), spec)
    got = {(t.params["module.lr"], t.state, t.value, tuple(sorted(t.intermediate_values.items())))
           for t in trials}
    assert got == {
        (0.01, TrialState.COMPLETE, 0.9, ((1, 0.5), (2, 0.7), (3, 0.8), (4, 0.9))),
        (0.002, TrialState.PRUNED, None, ((1, 0.3),)),
        (0.09, TrialState.FAIL, None, ()),
    }


def test_a_trial_complete_in_a_shorter_sweep_is_pruned_in_a_longer_one(
    write_sweep: SweepWriter, tmp_path: Path
) -> None:
    spec = load_spec(write_sweep())
    earlier = _earlier_sweep(spec, tmp_path / "earlier")
    longer = spec.with_overrides({"scheduler.max_epochs": 10})
    states = {t.params["module.lr"]: t.state for t in past_trials(earlier, longer)}
    assert states[0.01] is TrialState.PRUNED


@pytest.mark.parametrize(("change", "named"), [
    ({"space": {"module.lr": {"loguniform": [1e-3, 1e-1]}}}, "datamodule.batch_size"),
    ({"space": {"module.lr": {"loguniform": [1e-4, 1e-1]},
                "datamodule.batch_size": {"choice": [32, 64]}}}, "module.lr searched over other"),
    ({"metric": "val/loss", "mode": "min"}, "val/acc"),
])
def test_another_space_or_metric_is_refused_naming_the_difference(
    write_sweep: SweepWriter, tmp_path: Path, change: dict, named: str
) -> None:
    earlier = _earlier_sweep(load_spec(write_sweep()), tmp_path / "earlier")
    spec = load_spec(write_sweep(**change))
    with pytest.raises(SweepError, match=r"^--warm-start: .*Fix: ") as info:
        past_trials(earlier, spec)
    assert named in str(info.value)


def test_the_new_study_starts_after_the_earlier_trials(
    write_sweep: SweepWriter, tmp_path: Path
) -> None:
    spec = load_spec(write_sweep())
    past = past_trials(_earlier_sweep(spec, tmp_path / "earlier"), spec)

    def first_proposal(warm: bool) -> dict:
        search = TruthfulOptunaSearch(max_epochs=4, seed=0, warm_start=past if warm else None,
                                      sampler=optuna.samplers.TPESampler(seed=0,
                                                                         n_startup_trials=2))
        search.set_search_properties("val/acc", "max", spec.search_space.to_tune())
        config = search.suggest("new")
        assert config is not None
        return config

    warm, cold = first_proposal(warm=True), first_proposal(warm=False)
    # Optuna's trial numbers, and so the seeds, continue after the 3 earlier trials.
    assert (warm[SEED_KEY], cold[SEED_KEY]) == (trial_seed(0, 3), trial_seed(0, 0))
    assert warm["module.lr"] != cold["module.lr"], "TPE ignored what the earlier sweep learned"


def test_cli_refuses_a_warm_start_from_no_experiment_before_ray(
    write_sweep: SweepWriter, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "run_tune.py"), "launch", str(write_sweep()), "--storage",
         str(tmp_path / "runs"), "--warm-start", str(tmp_path / "nothing")],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "--warm-start:" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists(), "nothing created"


def test_a_warm_started_sweep_does_not_replay_the_earlier_sweeps_proposals(
    write_sweep: SweepWriter, tmp_path: Path
) -> None:
    from tuning.driver.sweep import build_searcher

    spec = load_spec(write_sweep())

    def proposals(search: TruthfulOptunaSearch, n: int) -> list[float]:
        search.set_search_properties("val/acc", "max", spec.search_space.to_tune())
        configs = [search.suggest(f"t{i}") for i in range(n)]
        return [c["module.lr"] for c in configs if c is not None]

    # The earlier sweep, same seed: its first proposals come from TPE's seeded random start-up.
    earlier = proposals(build_searcher(spec), 3)
    past = past_trials(_earlier_sweep(spec, tmp_path / "earlier"), spec)
    warm = proposals(build_searcher(spec, past), 3)
    assert not set(earlier) & set(warm)
    assert warm == proposals(build_searcher(spec, past), 3), "not reproducible"


def test_a_conditional_sweep_warm_starts_with_each_trials_own_branch(
    write_sweep: SweepWriter, tmp_path: Path
) -> None:
    import functools

    from tuning.config.space import sample

    choice = {"choice": [
        {"class_path": "torch.optim.SGD", "init_args": {"lr": {"loguniform": [1e-3, 1e-1]},
                                                        "momentum": {"uniform": [0.8, 0.99]}}},
        {"class_path": "torch.optim.Adam", "init_args": {"lr": {"loguniform": [1e-4, 1e-2]}}},
    ]}
    spec = load_spec(write_sweep(space={"module.optimizer": choice}))
    sgd = {"module.optimizer": "SGD", "module.optimizer[SGD].init_args.lr": 0.01,
           "module.optimizer[SGD].init_args.momentum": 0.9}
    adam = {"module.optimizer": "Adam", "module.optimizer[Adam].init_args.lr": 0.001}
    earlier = tmp_path / "earlier"
    Ledger(spec, {
        "a": TrialRecord("a", status="completed", config=sgd, history=[
            EpochRecord(e, {"val/acc": 0.9}) for e in range(1, 5)]),
        "b": TrialRecord("b", status="stopped", config=adam,
                         history=[EpochRecord(1, {"val/acc": 0.2})]),
    }).save(Location.parse(str(earlier)))
    trials = sorted(past_trials(earlier, spec), key=lambda t: t.params["module.optimizer"])
    assert [t.params for t in trials] == [adam, sgd]
    assert [t.state for t in trials] == [TrialState.PRUNED, TrialState.COMPLETE]
    # The new study takes them, and proposes the branches' own parameters after them.
    search = TruthfulOptunaSearch(max_epochs=4, seed=0, warm_start=trials, metric="val/acc",
                                  mode="max", space=functools.partial(sample, spec.search_space),
                                  sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=1))
    config = search.suggest("new")
    assert config is not None
    branch = config["module.optimizer"]
    assert {k for k in config if "[" in k} == {k for k in (sgd if branch == "SGD" else adam)
                                                if "[" in k}


def test_an_earlier_two_objective_sweep_is_told_with_its_values_and_constraints(
    write_sweep: SweepWriter, tmp_path: Path
) -> None:
    spec = load_spec(write_sweep(metric=["val/acc", "model/params"], mode=["max", "min"],
                                 constraints=["model/latency_ms <= 2"]))

    def record(trial_id: str, status: str, lr: float, epochs: int, ms: float) -> TrialRecord:
        history = [EpochRecord(n, {"val/acc": 0.1 * n, "model/params": 500.0,
                                   "model/latency_ms": ms}) for n in range(1, epochs + 1)]
        return TrialRecord(trial_id, status=status, history=history,
                           config={"module.lr": lr, "datamodule.batch_size": 32, SEED_KEY: 1})

    Ledger(spec, {"done": record("done", "completed", 0.01, 4, 3.0),
                  "cut": record("cut", "stopped", 0.002, 1, 1.0)}).save(
        Location.parse(str(tmp_path / "earlier")))
    trials = {t.params["module.lr"]: t for t in past_trials(tmp_path / "earlier", spec)}
    assert (trials[0.01].state, trials[0.01].values) == (TrialState.COMPLETE, [0.4, 500.0])
    assert trials[0.01].constraints == {"model/latency_ms <= 2": 1.0}
    assert (trials[0.002].state, trials[0.002].constraints) == (
        TrialState.PRUNED, {"model/latency_ms <= 2": -1.0})
    study = optuna.create_study(directions=spec.directions)
    for trial in trials.values():
        study.add_trial(trial)  # Optuna takes them as they are
    # Another sweep's objectives are refused, naming both.
    with pytest.raises(SweepError, match=r"it optimized val/acc \(max\), model/params \(min\) "
                                         r"under model/latency_ms <= 2, this sweep val/acc \(max\)"):
        past_trials(tmp_path / "earlier", load_spec(write_sweep()))
