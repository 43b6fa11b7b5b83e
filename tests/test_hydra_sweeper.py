"""A Hydra sweeper's search read as the sweep's: each params expression means what Hydra's own
override parser says it means, and what lightsweep cannot search is refused, naming the key."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep

from tuning.config.hydra_sweeper import parse_param, sweep_settings
from tuning.config.space import Choice, IntRange, LogUniform, Uniform, parse_distribution
from tuning.errors import SweepError

# Expressions as real projects write them: the Lightning-Hydra template's hparams_search
# configs, Hydra's Optuna sweeper's documentation, and the basic sweeper's comma lists.
REAL_EXAMPLES = [
    "interval(0.0001, 0.1)",
    "tag(log, interval(0.0001, 0.1))",
    "int(interval(2, 8))",
    "tag(log, int(interval(8, 512)))",
    "choice(32, 64, 128, 256)",
    "choice(adam, sgd)",
    "choice(true, false)",
    "range(16, 80, 16)",
    "range(1, 5)",
    "range(0.1, 0.5, 0.1)",
    "1,2,3",
    "relu,gelu",
]


def _hydra(expression: str) -> Any:
    return OverridesParser.create().parse_override(f"key={expression}")


def _values(dist: Any) -> list[Any] | None:
    return dist.finite_values()


@pytest.mark.parametrize("expression", REAL_EXAMPLES)
def test_each_expression_means_what_hydras_parser_says(expression: str) -> None:
    override = _hydra(expression)
    dist = parse_distribution("module.x", parse_param("model.x", expression))
    assert dist is not None
    if override.is_interval_sweep():
        sweep = override.value()
        assert isinstance(sweep, IntervalSweep)
        assert (dist.low, dist.high) == (sweep.start, sweep.end)  # type: ignore[attr-defined]
        integral = isinstance(sweep.start, int) and isinstance(sweep.end, int)
        log = "log" in sweep.tags
        if integral:
            assert isinstance(dist, IntRange) and dist.log == log
        else:
            assert isinstance(dist, LogUniform if log else Uniform)
    else:  # choice and range: exactly the values Hydra would run, in its order
        assert _values(dist) == list(override.sweep_iterator())


def test_a_range_excludes_its_stop_as_hydras_grammar_does() -> None:
    dist = parse_distribution("module.x", parse_param("model.x", "range(16, 80, 16)"))
    assert isinstance(dist, IntRange) and dist.finite_values() == [16, 32, 48, 64]


def test_a_plain_value_is_fixed() -> None:
    assert parse_param("data.batch_size", 64) == 64
    assert parse_param("model.name", "resnet") == "resnet"
    assert parse_param("trainer.deterministic", True) is True


def test_a_log_int_interval_samples_integers_on_a_log_scale() -> None:
    import optuna

    dist = parse_distribution("module.width", parse_param("model.width",
                                                          "tag(log, int(interval(8, 512)))"))
    assert isinstance(dist, IntRange)
    assert dist.optuna() == optuna.distributions.IntDistribution(8, 512, log=True)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    values = [study.ask({"w": dist.optuna()}).params["w"] for _ in range(200)]
    assert all(isinstance(v, int) and 8 <= v <= 512 for v in values)
    # Log-uniform: about half the draws lie below the geometric middle (64), not a twelfth.
    below = sum(v < math.sqrt(8 * 512) for v in values) / len(values)
    assert 0.35 < below < 0.65


@pytest.mark.parametrize(("expression", "message"), [
    ("interval(0.1", r"hydra\.sweeper\.params\.model\.lr: 'interval\(0\.1' is not Hydra's"),
    ("shuffle(choice(1, 2))", r"model\.lr: .*shuffles"),
    ("choice([1, 2], [3])", r"model\.lr: .*not a number, string, bool or null"),
    ("glob(*)", r"model\.lr: 'glob\(\*\)' is a sweep lightsweep does not search"),
])
def test_expressions_lightsweep_cannot_search_are_refused_naming_the_key(
        expression: str, message: str) -> None:
    with pytest.raises(SweepError, match=message):
        parse_param("model.lr", expression)


def test_the_templates_sweeper_config_gives_space_trials_direction_sampler_and_metric() -> None:
    found = sweep_settings({
        "_target_": "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper",
        "storage": None, "study_name": None, "n_jobs": 1, "direction": "maximize",
        "n_trials": 20,
        "sampler": {"_target_": "optuna.samplers.TPESampler", "seed": 1234,
                    "n_startup_trials": 10},
        "params": {"model.optimizer.lr": "interval(0.0001, 0.1)",
                   "data.batch_size": "choice(32, 64, 128, 256)"},
    }, "val/acc_best")
    assert found == {
        "metric": "val/acc_best", "mode": "max",
        "space": {"model.optimizer.lr": {"uniform": [0.0001, 0.1]},
                  "data.batch_size": {"choice": [32, 64, 128, 256]}},
        "search": {"sampler": "tpe", "seed": 1234, "sampler_args": {"n_startup_trials": 10},
                   "num_samples": 20},
    }


def test_the_sweepers_older_search_space_form_is_read() -> None:
    found = sweep_settings({"search_space": {
        "model.lr": {"type": "float", "low": 1e-4, "high": 0.2, "log": True},
        "model.width": {"type": "int", "low": 16, "high": 64, "step": 16},
        "datamodule.batch_size": {"type": "categorical", "choices": [32, 64]},
    }}, None)
    assert found["space"] == {"model.lr": {"loguniform": [1e-4, 0.2]},
                              "model.width": {"int": [16, 64], "step": 16},
                              "datamodule.batch_size": {"choice": [32, 64]}}


@pytest.mark.parametrize(("sweeper", "message"), [
    ({"sampler": {"_target_": "optuna.samplers.CmaEsSampler"}},
     r"hydra\.sweeper\.sampler\._target_: optuna\.samplers\.CmaEsSampler is not a sampler"),
    ({"direction": "up"}, r"hydra\.sweeper\.direction: 'up'"),
    ({"n_trials": 0}, r"hydra\.sweeper\.n_trials: expected a positive integer"),
    ({"direction": ["maximize", "minimize"]}, r"2 directions for one metric"),
])
def test_sweeper_settings_lightsweep_cannot_run_are_refused(sweeper: dict[str, Any],
                                                             message: str) -> None:
    with pytest.raises(SweepError, match=message):
        sweep_settings(sweeper, "val/acc")


def test_a_choice_of_plain_values_is_a_choice() -> None:
    assert isinstance(parse_distribution("module.x", parse_param("model.x", "a,b")), Choice)
