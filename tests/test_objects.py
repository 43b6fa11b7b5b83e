"""Objects in arguments (LightningCLI's class_path/init_args, Hydra's _target_): how they are
set, checked before Ray starts, and built in a trial's worker."""

from __future__ import annotations

import functools
from typing import Any

import lightning.pytorch as pl
import pytest
import torch

from lightning_modules.injected import InjectedClassifier
from lightning_modules.nets import CNN1d
from tuning.config.objects import build, build_arguments, check_path, set_path, validate
from tuning.errors import SweepError

NET = {"class_path": "lightning_modules.nets.CNN1d",
       "init_args": {"in_channels": 1, "length": 40, "num_classes": 10, "width": 16}}


def _optimizer_of(model: Any) -> torch.optim.Optimizer:
    optimizer = model.configure_optimizers()
    return optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer


def test_lightning_cli_objects_are_built_as_lightning_cli_builds_them() -> None:
    model = build(InjectedClassifier, {
        "net": NET,
        "optimizer": {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.02, "momentum": 0.9}},
    }, pl)
    assert isinstance(model.net, CNN1d)
    assert model.net.layers[0].out_channels == 16
    optimizer = _optimizer_of(model)
    # The searched values are the values the optimizer uses.
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.param_groups[0]["lr"] == 0.02
    assert optimizer.param_groups[0]["momentum"] == 0.9


def test_hydra_objects_and_partials_are_built_by_hydra() -> None:
    model = build(InjectedClassifier, {
        "net": {"_target_": "lightning_modules.nets.CNN1d", "in_channels": 1, "length": 40,
                "num_classes": 10, "width": 8},
        "optimizer": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 0.004},
    }, pl)
    assert isinstance(model.optimizer, functools.partial)
    optimizer = _optimizer_of(model)
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.param_groups[0]["lr"] == 0.004
    assert model.net.layers[0].out_channels == 8


def test_plain_arguments_are_passed_as_they_are() -> None:
    assert build_arguments(InjectedClassifier, {"net": "anything"}, pl) == {"net": "anything"}


@pytest.mark.parametrize("path", ["net.init_args.width", "net.width"])
def test_a_path_sets_a_value_inside_an_object_in_either_of_lightning_clis_forms(path: str) -> None:
    args: dict[str, Any] = {"net": {"class_path": "x.Net", "init_args": {"width": 1}}}
    set_path(args, path, 64, "space.module." + path)
    assert args == {"net": {"class_path": "x.Net", "init_args": {"width": 64}}}


def test_a_class_given_by_name_becomes_an_object_to_set_arguments_in() -> None:
    args: dict[str, Any] = {"optimizer": "torch.optim.Adam"}
    set_path(args, "optimizer.init_args.lr", 0.1, "space.module.optimizer.init_args.lr")
    assert args == {"optimizer": {"class_path": "torch.optim.Adam", "init_args": {"lr": 0.1}}}


def test_a_path_through_a_plain_value_is_refused_naming_the_key() -> None:
    with pytest.raises(SweepError, match=r"space\.module\.lr\.x: lr is 0\.1, not an object"):
        set_path({"lr": 0.1}, "lr.x", 1, "space.module.lr.x")


def test_a_searched_path_is_checked_against_every_signature_it_runs_through() -> None:
    args = {"net": NET}
    check_path(InjectedClassifier, args, "net.init_args.width", "space.module.net.init_args.width")
    with pytest.raises(SweepError, match=r"space\.module\.net\.init_args\.widht: CNN1d\.__init__ "
                                         r"takes no argument 'widht'\. Fix: use one of in_channels, "
                                         r"length, num_classes, width, depth, dropout"):
        check_path(InjectedClassifier, args, "net.init_args.widht",
                   "space.module.net.init_args.widht")
    with pytest.raises(SweepError, match=r"InjectedClassifier\.__init__ takes no argument 'nett'"):
        check_path(InjectedClassifier, args, "nett.init_args.width", "space.module.nett")


@pytest.mark.parametrize(("args", "message"), [
    ({"net": {"class_path": "lightning_modules.nets.NoSuchNet"}}, r"module_args: .*NoSuchNet"),
    ({"net": {**NET, "init_args": {**NET["init_args"], "widht": 3}}},
     r"module_args: .*'widht' is not accepted"),
    ({"net": NET, "optimizer": 0.01},
     r"module_args\.optimizer: InjectedClassifier\.__init__ takes a callable here, got 0\.01"),
    ({"net": {"_target_": "lightning_modules.nets.CNN1d", "in_channels": 1, "widht": 3}},
     r"module_args\.net: lightning_modules\.nets\.CNN1d takes no argument 'widht'"),
    ({"net": {"_target_": "nowhere.Net"}}, r"module_args\.net: cannot import 'nowhere\.Net'"),
])
def test_objects_lightning_cli_or_hydra_would_refuse_are_refused_before_ray(
        args: dict[str, Any], message: str) -> None:
    with pytest.raises(SweepError, match=message):
        validate(InjectedClassifier, args, pl, "module_args")


def test_a_trainer_logger_given_as_an_object_is_built_and_checked() -> None:
    logger = {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": "x"}}
    built = build_arguments(pl.Trainer, {"precision": "bf16-mixed", "logger": logger}, pl)
    assert built["precision"] == "bf16-mixed"  # only what was given: the rest stay defaults
    assert isinstance(built["logger"], pl.loggers.CSVLogger) and set(built) == {"precision", "logger"}
    with pytest.raises(SweepError, match=r"trainer_args: .*'save_dirr' is not accepted"):
        validate(pl.Trainer, {"logger": {**logger, "init_args": {"save_dirr": "x"}}}, pl,
                 "trainer_args")


def test_both_forms_in_one_class_are_refused_naming_the_field() -> None:
    with pytest.raises(SweepError, match=r"module_args: objects are written both as class_path"):
        validate(InjectedClassifier, {"net": NET, "optimizer": {"_target_": "torch.optim.Adam"}},
                 pl, "module_args")
