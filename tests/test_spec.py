"""The sweep-file format: what parses, and every rejection naming its field and fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SweepWriter
from tuning.config.spec import SweepSpec, load_spec
from tuning.errors import SweepError


def test_valid_file_loads_with_defaults(write_sweep: SweepWriter) -> None:
    spec = load_spec(write_sweep(resources=None, checkpoints=None))
    assert spec.resources.workers_per_trial == 1
    assert spec.resources.max_concurrent is None
    assert spec.checkpoints.num_to_keep == 2
    assert spec.metric == "val/acc"


def test_yaml_exponent_without_dot_is_a_number(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "module: a.b:C\ndatamodule: a.b:D\nmetric: m\nmode: min\n"
        "space:\n  module.lr: {loguniform: [1e-4, 1e-1]}\n  module.wd: 5e-3\n"
    )
    spec = load_spec(path)
    dist = spec.search_space.searched["module.lr"]
    assert (dist.low, dist.high) == (1e-4, 1e-1)  # type: ignore[attr-defined]
    assert spec.search_space.fixed["module.wd"] == pytest.approx(5e-3)


def test_strings_that_only_look_numeric_stay_strings(write_sweep: SweepWriter) -> None:
    spec = load_spec(write_sweep(trainer_args={"precision": "32-true"}))
    assert spec.trainer_args["precision"] == "32-true"


def test_cli_overrides_win_and_are_validated(write_sweep: SweepWriter) -> None:
    spec = load_spec(write_sweep(), {"search.num_samples": 9, "scheduler.max_epochs": None})
    assert spec.search.num_samples == 9
    assert spec.scheduler.max_epochs == 4
    with pytest.raises(SweepError, match=r"resources\.workers_per_trial"):
        load_spec(write_sweep(), {"resources.workers_per_trial": 0})


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"modle": "x"}, "modle: unknown key"),
        ({"search": {"num_samples": 4, "sed": 1}}, r"search\.sed: unknown key"),
        ({"search": {"num_samples": "four"}}, "search.num_samples"),
        ({"search": {"num_samples": 0}}, "search.num_samples"),
        ({"scheduler": {"max_epochs": 2, "grace_period": 3}}, "grace_period"),
        ({"scheduler": {"name": "hyperband"}}, r"scheduler\.name.*'asha', 'fifo' or 'pbt'"),
        ({"scheduler": {"perturbation_interval": 2}},
         r"scheduler: perturbation_interval applies only to population-based training.*name: pbt"),
        ({"scheduler": {"name": "pbt", "max_epochs": 4, "perturbation_interval": 4}},
         r"perturbation_interval \(4\) must be below max_epochs \(4\)"),
        ({"scheduler": {"name": "pbt", "quantile_fraction": 0.7}}, "scheduler.quantile_fraction"),
        ({"scheduler": {"name": "pbt", "resample_probability": 2}},
         "scheduler.resample_probability"),
        ({"scheduler": {"name": "pbt"}, "space": {"datamodule.batch_size": 32}},
         "scheduler.name: pbt mutates the searched values of space, and space searches none"),
        ({"scheduler": {"name": "pbt", "mutate": ["module.width"]}},
         r"scheduler\.mutate: 'module\.width' is not searched in space"),
        ({"scheduler": {"name": "pbt"}, "space": {"module.optimizer": {"choice": [
            {"class_path": "torch.optim.SGD"}, {"class_path": "torch.optim.Adam"}]}}},
         r"space\.module\.optimizer: a choice among objects cannot change in the middle"),
        ({"search": {"sampler": "cmaes"}}, r"search\.sampler.*'tpe', 'nsga2' or 'random'"),
        ({"resources": {"workers_per_trial": 1.5}}, "resources.workers_per_trial"),
        ({"resources": {"placement": "STRICT_PACK"}}, r"resources\.placement.*'PACK' or 'SPREAD'"),
        ({"metric": None}, "metric: required but missing"),
        ({"mode": "maximize"}, "mode"),
        ({"module": "no_colon_here"}, "package.module:ClassName"),
        ({"module_args": [1, 2]}, "module_args"),
    ],
)
def test_structural_errors_name_the_field(
    write_sweep: SweepWriter, changes: dict, field: str
) -> None:
    with pytest.raises(SweepError, match=field):
        load_spec(write_sweep(**changes))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"normal": [0, 1]}, "unknown distribution"),
        ({"uniform": [1, 1]}, "low < high"),
        ({"uniform": [2, 1]}, "low < high"),
        ({"loguniform": [0, 1]}, "positive bounds"),
        ({"loguniform": [-1e-3, 1]}, "positive bounds"),
        ({"choice": []}, "non-empty list"),
        ({"uniform": [0]}, r"\[low, high\]"),
        ({"uniform": ["a", 1]}, "must be a number"),
        ({"int": [1, 10], "step": 4}, "multiple of step"),
        ({"uniform": [0, 1], "step": 1}, "'step' only goes with int"),
    ],
)
def test_bad_distributions_are_rejected(
    write_sweep: SweepWriter, entry: dict, message: str
) -> None:
    with pytest.raises(SweepError, match=rf"space\.module\.lr: .*{message}"):
        load_spec(write_sweep(space={"module.lr": entry}))


def test_unknown_prefix_is_rejected(write_sweep: SweepWriter) -> None:
    with pytest.raises(SweepError, match=r"space\.modle\.lr: unknown prefix.*module\."):
        load_spec(write_sweep(space={"modle.lr": {"uniform": [0, 1]}}))


def test_lightning_cli_route_names_are_read_as_lightsweeps(write_sweep: SweepWriter) -> None:
    spec = load_spec(write_sweep(space={"model.lr": {"uniform": [0.1, 1]},
                                        "data.batch_size": {"choice": [8, 16]}}))
    assert set(spec.space) == {"module.lr", "datamodule.batch_size"}
    args = spec.trial_args({"module.lr": 0.5, "datamodule.batch_size": 16})
    assert args["module"]["lr"] == 0.5 and args["datamodule"]["batch_size"] == 16


def test_missing_file_and_broken_yaml(tmp_path: Path) -> None:
    with pytest.raises(SweepError, match="sweep file not found"):
        load_spec(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("module: [unclosed\n")
    with pytest.raises(SweepError, match="broken YAML"):
        load_spec(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(SweepError, match="YAML mapping"):
        load_spec(listing)


def test_trial_args_route_fixed_and_searched_values(write_sweep: SweepWriter) -> None:
    spec = load_spec(write_sweep(space={
        "module.lr": {"loguniform": [1e-3, 1e-1]},
        "module.dropout": 0.1,
        "trainer.gradient_clip_val": 1.0,
    }))
    args = spec.trial_args({"module.lr": 0.01})
    assert args["module"] == {
        "arch": "mlp", "input_shape": [8, 8], "width": 32, "depth": 1, "lr": 0.01, "dropout": 0.1,
    }
    assert args["trainer"] == {"gradient_clip_val": 1.0}
    assert args["datamodule"] == {}


@pytest.mark.parametrize(("changes", "message"), [
    ({"resources": {"workers_per_trial": 2, "trial_runner": "inline"}},
     "resources.trial_runner: inline fits a trial in one process, and workers_per_trial is 2"),
    ({"resources": {"trial_runner": "inline"},
      "scheduler": {"name": "pbt", "max_epochs": 4, "perturbation_interval": 1}},
     "resources.trial_runner: inline does not run population-based training"),
])
def test_inline_trials_refuse_what_needs_a_train_run(
        write_sweep: SweepWriter, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(SweepError, match=message):
        load_spec(write_sweep(**changes))


def test_several_metrics_are_objectives_the_first_stays_metric(write_sweep: SweepWriter) -> None:
    spec = load_spec(write_sweep(metric=["val/acc", "model/params"], mode=["max", "min"],
                                 constraints=["model/latency_ms <= 2.5"]))
    assert (spec.metric, spec.mode, spec.multi_objective) == ("val/acc", "max", True)
    assert [(o.metric, o.mode) for o in spec.objective_list] == [("val/acc", "max"),
                                                                 ("model/params", "min")]
    assert spec.directions == ["maximize", "minimize"]
    assert [str(c) for c in spec.constraint_list] == ["model/latency_ms <= 2.5"]
    assert spec.constraint_list[0].violation(3.0) == 0.5
    # Built-in metrics are measured when an objective or a constraint names them.
    assert spec.measured_metrics == ["model/params", "model/latency_ms"]
    # Its dump (what trials and resumes validate again) is the same sweep.
    assert SweepSpec.model_validate(spec.model_dump()) == spec
    assert spec.with_overrides({"search.num_samples": 3}).objective_list == spec.objective_list


def test_one_metric_measures_nothing_built_in(write_sweep: SweepWriter) -> None:
    spec = load_spec(write_sweep())
    assert (spec.multi_objective, spec.measured_metrics) == (False, [])
    assert [(o.metric, o.mode) for o in spec.objective_list] == [("val/acc", "max")]


@pytest.mark.parametrize(("changes", "message"), [
    ({"metric": ["val/acc", "model/params"], "mode": "max"},
     r"mode: 1 mode\(s\) for 2 metric\(s\)\. Fix: give one mode per metric"),
    ({"metric": ["val/acc", "val/acc"], "mode": ["max", "max"]}, r"metric: .* names a metric twice"),
    ({"metric": [], "mode": []}, r"metric: an empty list"),
    ({"constraints": ["latency < 5"]}, r"constraints\[0\]: 'latency < 5' is not a constraint\. "
                                       r"Fix: write METRIC <= NUMBER"),
    ({"constraints": ["model/params <= many"]}, r"constraints\[0\]: .* is not a constraint"),
    ({"metric": ["val/acc", "model/params"], "mode": ["max", "min"],
      "scheduler": {"name": "pbt", "max_epochs": 4}},
     r"scheduler\.name: pbt ranks trials by one metric.*Fix: keep one metric"),
])
def test_bad_objectives_and_constraints_name_the_field(
        write_sweep: SweepWriter, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(SweepError, match=message):
        load_spec(write_sweep(**changes))
