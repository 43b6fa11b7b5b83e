"""A LightningCLI config as a sweep's base, and the best trial written back as one."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from tuning.config.lightning_config import best_config
from tuning.config.spec import load_spec
from tuning.errors import SweepError

CONFIG: dict[str, Any] = {
    "seed_everything": 11,
    "trainer": {"max_epochs": 7, "accelerator": "gpu", "devices": 4, "strategy": "ddp",
                "precision": "bf16-mixed", "gradient_clip_val": 0.5,
                "callbacks": [{"class_path": "lightning.pytorch.callbacks.EarlyStopping",
                               "init_args": {"monitor": "val/loss", "patience": 3}}]},
    "model": {"class_path": "lightning_modules.injected.InjectedClassifier",
              "init_args": {"net": {"class_path": "lightning_modules.nets.CNN1d",
                                    "init_args": {"in_channels": 1, "length": 40,
                                                  "num_classes": 10, "width": 32}},
                            "optimizer": {"class_path": "torch.optim.Adam",
                                          "init_args": {"lr": 0.001}}}},
    "data": {"class_path": "lightning_modules.datamodules.MNIST1DDataModule",
             "init_args": {"batch_size": 64}},
}
SWEEP: dict[str, Any] = {
    "config": "config.yaml",
    "space": {"model.net.init_args.width": {"int": [16, 64], "step": 16},
              "model.optimizer.init_args.lr": {"loguniform": [1e-4, 1e-2]}},
    "metric": "val/acc", "mode": "max",
}


def _write(directory: Path, name: str, data: Any) -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_a_subclass_mode_config_names_the_classes_and_their_arguments(tmp_path: Path,
                                                                      caplog: Any) -> None:
    _write(tmp_path, "config.yaml", CONFIG)
    with caplog.at_level(logging.INFO):
        spec = load_spec(_write(tmp_path, "sweep.yaml", SWEEP))
    assert spec.module == "lightning_modules.injected.InjectedClassifier"
    assert spec.datamodule == "lightning_modules.datamodules.MNIST1DDataModule"
    assert spec.scheduler.max_epochs == 7  # the config's trainer.max_epochs
    assert spec.search.seed == 11  # seed_everything
    assert spec.callbacks == [{"lightning.pytorch.callbacks.EarlyStopping":
                               {"monitor": "val/loss", "patience": 3}}]
    # What lightsweep sets per trial is replaced, with one line saying so; the rest is kept.
    trainer = spec.args_section("trainer")
    assert trainer == {"precision": "bf16-mixed", "gradient_clip_val": 0.5}
    assert [r.getMessage() for r in caplog.records if "set by lightsweep" in r.getMessage()] == [
        "config: trainer accelerator, devices, strategy set by lightsweep for each trial "
        "(accelerator: resources.gpus_per_worker; devices: resources.workers_per_trial; "
        "strategy: Ray's DDP across a trial's workers)"]
    args = spec.trial_args({"module.net.init_args.width": 48,
                            "module.optimizer.init_args.lr": 0.005})
    assert args["module"]["net"]["init_args"] == {"in_channels": 1, "length": 40,
                                                  "num_classes": 10, "width": 48}
    assert args["module"]["optimizer"] == {"class_path": "torch.optim.Adam",
                                           "init_args": {"lr": 0.005}}
    assert args["datamodule"] == {"batch_size": 64}


def test_later_configs_and_the_sweep_file_win(tmp_path: Path) -> None:
    _write(tmp_path, "config.yaml", CONFIG)
    override = _write(tmp_path, "more.yaml", {
        "model": {"init_args": {"optimizer": {"class_path": "torch.optim.SGD",
                                              "init_args": {"momentum": 0.9}}}},
        "trainer": {"max_epochs": 5}})
    spec = load_spec(_write(tmp_path, "sweep.yaml", {
        **SWEEP, "space": {}, "scheduler": {"max_epochs": 3}, "search": {"seed": 2},
        "datamodule_args": {"batch_size": 32}}), {"config": [str(override)]})
    args = spec.trial_args({})
    # Another class_path takes its object whole, as jsonargparse merges config files.
    assert args["module"]["optimizer"] == {"class_path": "torch.optim.SGD",
                                           "init_args": {"momentum": 0.9}}
    assert args["datamodule"] == {"batch_size": 32}
    assert (spec.scheduler.max_epochs, spec.search.seed) == (3, 2)


def test_trainer_args_max_epochs_is_the_schedulers_when_it_sets_none(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, "sweep.yaml", {
        "module": "a.b:C", "datamodule": "a.b:D", "metric": "m", "mode": "min",
        "trainer_args": {"max_epochs": 6}}))
    assert spec.scheduler.max_epochs == 6 and "max_epochs" not in spec.trainer_args


@pytest.mark.parametrize(("config", "message"), [
    ({"model": {}, "fitt": 1}, r"config: .*'fitt', which LightningCLI's fit does not take"),
    ({"trainer": [1, 2]}, r"config: .*trainer must be a mapping"),
])
def test_a_config_lightning_cli_would_refuse_is_refused(tmp_path: Path, config: Any,
                                                        message: str) -> None:
    _write(tmp_path, "config.yaml", config)
    with pytest.raises(SweepError, match=message):
        load_spec(_write(tmp_path, "sweep.yaml", SWEEP))


def test_a_missing_config_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(SweepError, match=r"LightningCLI config not found"):
        load_spec(_write(tmp_path, "sweep.yaml", SWEEP))


def test_a_module_that_contradicts_the_configs_class_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "config.yaml", CONFIG)
    with pytest.raises(SweepError, match=r"module: .* differs from the config's model\.class_path"):
        load_spec(_write(tmp_path, "sweep.yaml", {
            **SWEEP, "module": "lightning_modules.classifier:Classifier"}))


def test_the_best_trial_keeps_the_base_configs_form() -> None:
    args: dict[str, Any] = {"module": {"net": {"class_path": "x.Net"}}, "datamodule": {"batch_size": 8},
                            "trainer": {"precision": "bf16-mixed"}, "optimizer": {},
                            "lr_scheduler": {}}
    plain = best_config({"model": {"net": None}, "trainer": {"devices": 1}}, "pkg.mod:Model",
                        "pkg.mod:Data", args, max_epochs=9, seed=5)
    assert plain["model"] == {"net": {"class_path": "x.Net"}}  # as LightningCLI(Model, Data) reads
    assert plain["data"] == {"class_path": "pkg.mod.Data", "init_args": {"batch_size": 8}}
    assert plain["trainer"] == {"devices": 1, "precision": "bf16-mixed", "max_epochs": 9}
    assert plain["seed_everything"] == 5 and "optimizer" not in plain


def test_a_top_level_optimizer_replaces_configure_optimizers_as_lightning_cli_does(
        tmp_path: Path) -> None:
    import lightning.pytorch as pl
    import torch

    from lightning_modules import Classifier
    from tuning.config.objects import apply_optimizer, build

    _write(tmp_path, "config.yaml", {
        "model": {"arch": "mlp", "input_shape": [8, 8], "width": 8, "depth": 1},
        "optimizer": {"class_path": "SGD", "init_args": {"lr": 0.5, "momentum": 0.5}},
        "lr_scheduler": {"class_path": "torch.optim.lr_scheduler.StepLR",
                         "init_args": {"step_size": 3}}})
    spec = load_spec(_write(tmp_path, "sweep.yaml", {
        "config": "config.yaml", "module": "lightning_modules.classifier:Classifier",
        "datamodule": "lightning_modules.datamodules:DigitsDataModule", "metric": "val/acc",
        "mode": "max", "space": {"optimizer.init_args.lr": {"loguniform": [1e-3, 1e-1]}}}))
    args = spec.trial_args({"optimizer.init_args.lr": 0.02})
    model = build(Classifier, args["module"], pl)
    apply_optimizer(model, args["optimizer"], args["lr_scheduler"], pl)
    optimizers, schedulers = model.configure_optimizers()
    [optimizer], [scheduler] = optimizers, schedulers
    assert isinstance(optimizer, torch.optim.SGD)  # a bare name is torch.optim's, as in LightningCLI
    assert optimizer.param_groups[0]["lr"] == 0.02 and optimizer.param_groups[0]["momentum"] == 0.5
    assert isinstance(scheduler, torch.optim.lr_scheduler.StepLR)


def test_a_config_lightning_cli_printed_itself_is_read_as_is(tmp_path: Path) -> None:
    """``--print_config`` writes every key, defaults and nulls included: the config of a project
    no one wrote by hand."""
    import subprocess
    import sys

    import lightning.pytorch as pl

    from lightning_modules.injected import InjectedClassifier
    from tests.conftest import REPO
    from tuning.config.checks import check_spec
    from tuning.config.objects import build

    printed = subprocess.run(
        [sys.executable, "-m", "lightning_modules.injected", "fit", "--config",
         str(REPO / "lightning_modules" / "injected" / "config.yaml"), "--print_config"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=True).stdout
    (tmp_path / "config.yaml").write_text(printed)
    spec = load_spec(_write(tmp_path, "sweep.yaml", {
        **SWEEP, "module": "lightning_modules.injected.InjectedClassifier",
        "datamodule": "lightning_modules.datamodules.MNIST1DDataModule"}))
    check_spec(spec, None)
    trainer = spec.args_section("trainer")
    assert "enable_progress_bar" not in trainer  # null: the trial's own default (no bar) holds
    assert trainer["inference_mode"] is True and "devices" not in trainer
    assert (spec.scheduler.max_epochs, spec.search.seed) == (12, 7)
    args = spec.trial_args({"module.net.init_args.width": 48,
                            "module.optimizer.init_args.lr": 0.005})
    model = build(InjectedClassifier, args["module"], pl)
    assert model.net.layers[0].out_channels == 48
    assert model.configure_optimizers().param_groups[0]["lr"] == 0.005
