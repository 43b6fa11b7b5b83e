"""Conditional and nested search spaces, sampled by real Optuna (define-by-run)."""

from __future__ import annotations

import functools
from typing import Any

import optuna
import pytest
from ray.tune.search.optuna import OptunaSearch

from tuning.config.space import ObjectChoice, SearchSpace, sample
from tuning.errors import SweepError

OPTIMIZERS = {"choice": [
    {"class_path": "torch.optim.AdamW",
     "init_args": {"lr": {"loguniform": [1e-4, 1e-2]}, "weight_decay": {"loguniform": [1e-6, 1e-2]}}},
    {"class_path": "torch.optim.SGD",
     "init_args": {"lr": {"loguniform": [1e-3, 1e-1]}, "momentum": {"uniform": [0.8, 0.99]}}},
]}
FLAT = {
    "module.lr": {"loguniform": [1e-4, 1e-1]},
    "module.dropout": {"uniform": [0.0, 0.5]},
    "module.width": {"int": [16, 64], "step": 16},
    "datamodule.batch_size": {"choice": [32, 64]},
}


def _study(seed: int = 0) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=4))


def _objective(trial: optuna.Trial, space: SearchSpace) -> float:
    space.suggest(trial)
    # SGD does better here, at a learning rate near 0.03: TPE should find that branch.
    if trial.params["module.optimizer"] == "SGD":
        return 1.0 - abs(trial.params["module.optimizer[SGD].init_args.lr"] - 0.03)
    return 0.5 - trial.params["module.optimizer[AdamW].init_args.lr"]


def test_a_branch_searches_only_its_own_arguments_and_tpe_keeps_them_apart() -> None:
    space = SearchSpace.parse({"module.optimizer": OPTIMIZERS})
    study = _study()
    study.optimize(functools.partial(_objective, space=space), n_trials=30)
    for trial in study.trials:
        branch = trial.params["module.optimizer"]
        expected = {"AdamW": {"lr", "weight_decay"}, "SGD": {"lr", "momentum"}}[branch]
        inner = {k.rsplit(".", 1)[1] for k in trial.params if k != "module.optimizer"}
        assert inner == expected
        assert all(k.startswith(f"module.optimizer[{branch}].") for k in trial.params
                   if k != "module.optimizer")
    # Each branch's lr has its own range: Optuna holds one distribution per branch.
    sgd_lrs = [t.params["module.optimizer[SGD].init_args.lr"] for t in study.trials
               if t.params["module.optimizer"] == "SGD"]
    assert sgd_lrs and all(1e-3 <= lr <= 1e-1 for lr in sgd_lrs)
    assert study.best_trial.params["module.optimizer"] == "SGD"
    # After TPE's start-up, the better branch is proposed most of the time.
    later = [t.params["module.optimizer"] for t in study.trials[10:]]
    assert later.count("SGD") > len(later) / 2


def test_a_trials_values_become_the_chosen_object() -> None:
    space = SearchSpace.parse({"module.optimizer": OPTIMIZERS})
    config = {"module.optimizer": "SGD", "module.optimizer[SGD].init_args.lr": 0.02,
              "module.optimizer[SGD].init_args.momentum": 0.9}
    assert space.values(config)["module.optimizer"] == {
        "class_path": "torch.optim.SGD", "init_args": {"lr": 0.02, "momentum": 0.9}}


def test_a_flat_space_proposes_what_tunes_conversion_proposed() -> None:
    # Sweeps written before conditional spaces keep their proposals, seed for seed.
    space = SearchSpace.parse(FLAT)
    old = OptunaSearch(space=space.to_tune(), metric="m", mode="max",
                       sampler=optuna.samplers.TPESampler(seed=3))
    new = OptunaSearch(space=functools.partial(sample, space), metric="m", mode="max",
                       sampler=optuna.samplers.TPESampler(seed=3))
    for i in range(12):
        proposals = [s.suggest(str(i)) for s in (old, new)]
        assert proposals[0] == proposals[1]
        for s, proposal in zip((old, new), proposals, strict=True):
            assert proposal is not None
            s.on_trial_complete(str(i), {"m": proposal["module.lr"] * proposal["module.width"]})


def test_the_searched_keys_of_a_conditional_space_list_every_branch() -> None:
    space = SearchSpace.parse({"model.optimizer": OPTIMIZERS})
    assert isinstance(space.distributions["module.optimizer"], ObjectChoice)
    assert list(space.searched) == [
        "module.optimizer", "module.optimizer[AdamW].init_args.lr",
        "module.optimizer[AdamW].init_args.weight_decay", "module.optimizer[SGD].init_args.lr",
        "module.optimizer[SGD].init_args.momentum",
    ]
    sgd = {"module.optimizer": "SGD", "module.optimizer[SGD].init_args.lr": 0.01,
           "module.optimizer[SGD].init_args.momentum": 0.9}
    assert set(space.optuna_distributions(sgd)) == set(sgd)


def test_branches_of_one_class_get_distinct_labels() -> None:
    space = SearchSpace.parse({"module.optimizer": {"choice": [
        {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.1}},
        {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.01, "nesterov": True,
                                                        "momentum": 0.9}},
    ]}})
    dist = space.distributions["module.optimizer"]
    assert isinstance(dist, ObjectChoice) and dist.labels == ["SGD#0", "SGD#1"]


@pytest.mark.parametrize("choice", [
    [{"class_path": "torch.optim.SGD"}, 0.1],
    [{"lr": {"loguniform": [1e-3, 1e-1]}}, {"lr": 0.1}],
])
def test_a_conditional_choice_whose_branches_are_not_objects_is_refused(choice: Any) -> None:
    with pytest.raises(SweepError, match=r"space\.module\.optimizer: .*not (an )?object"):
        SearchSpace.parse({"module.optimizer": {"choice": choice}})


def test_hydra_branches_search_their_arguments_directly() -> None:
    space = SearchSpace.parse({"module.optimizer": {"choice": [
        {"_target_": "torch.optim.Adam", "_partial_": True, "lr": {"loguniform": [1e-4, 1e-2]}},
        {"_target_": "torch.optim.SGD", "_partial_": True, "lr": {"loguniform": [1e-3, 1e-1]}},
    ]}})
    assert "module.optimizer[Adam].lr" in space.searched
    config = {"module.optimizer": "Adam", "module.optimizer[Adam].lr": 0.001}
    assert space.values(config)["module.optimizer"] == {
        "_target_": "torch.optim.Adam", "_partial_": True, "lr": 0.001}
