"""A Hydra project tuned as it sits on disk (lightning_modules/hydra_project, laid out like the
Lightning-Hydra template): its configs tree composed by Hydra, its own Optuna-sweeper config as
the search, its root found, each trial's config resolved with its own values and directory, and
every mistake refused before Ray starts, exit 2, naming the key."""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, SweepWriter
from tuning.cli import main
from tuning.config.hydra_project import ROOT_ENV
from tuning.config.spec import SweepSpec, load_spec
from tuning.errors import SweepError

PROJECT = REPO / "lightning_modules" / "hydra_project"
SEARCH = ["hparams_search=mnist1d_optuna", "trainer.max_epochs=2",
          "+trainer.limit_train_batches=40", "hydra.sweeper.n_trials=4"]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the example project, the working directory, and no PROJECT_ROOT set."""
    copy = tmp_path / "project"
    shutil.copytree(PROJECT, copy, ignore=lambda folder, names: [
        n for n in names if Path(folder) == PROJECT and n in ("data", "logs")])
    monkeypatch.chdir(copy)
    monkeypatch.delenv(ROOT_ENV, raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the project's root goes on it
    return copy


def _spec(*overrides: str, **more: Any) -> SweepSpec:
    return load_spec(None, {"hydra": {"config": "configs/train.yaml", "overrides": list(overrides)},
                            **more})


def test_the_projects_own_search_is_the_sweeps(project: Path) -> None:
    spec = _spec(*SEARCH)
    assert spec.module == "src.models.mnist1d_module.MNIST1DLitModule"
    assert spec.datamodule == "src.data.mnist1d_datamodule.MNIST1DDataModule"
    assert (spec.metric, spec.mode) == ("val/acc_best", "max")  # optimized_metric, direction
    assert spec.search.num_samples == 4  # hydra.sweeper.n_trials, as overridden
    assert (spec.search.sampler, spec.search.seed) == ("tpe", 1234)
    assert spec.search.sampler_args == {"n_startup_trials": 10}
    assert spec.scheduler.max_epochs == 2  # trainer.max_epochs
    assert set(spec.shown_keys.values()) == {
        "model.optimizer.lr", "model.optimizer.weight_decay", "data.batch_size",
        "model.net.channels", "model.net.depth"}
    assert spec.search_space.possible_values("module.net.depth") == [2, 3]
    assert not spec.wandb.enabled  # the project's logger: null
    # The root, as the project's train.py finds it, without the user setting anything.
    assert os.environ[ROOT_ENV] == str(project)
    assert spec.hydra is not None and spec.hydra.root == "."
    assert spec.args_section("datamodule")["data_dir"] == f"{project}/data/"
    assert spec.args_section("trainer")["limit_train_batches"] == 40


def test_each_trial_resolves_the_config_with_its_values_and_its_own_directory(
        project: Path) -> None:
    (project / "configs" / "model" / "mnist1d.yaml").write_text(
        (project / "configs" / "model" / "mnist1d.yaml").read_text()
        + "\nhead_channels: ${model.net.channels}\n")
    spec = _spec(*SEARCH)
    config = {"module.optimizer.lr": 0.01, "module.optimizer.weight_decay": 0.0,
              "datamodule.batch_size": 32, "module.net.channels": 16, "module.net.depth": 2}
    args = spec.trial_args(config, output_dir="/trial/dir")
    assert args["module"]["optimizer"] == {"_target_": "torch.optim.Adam", "_partial_": True,
                                           "lr": 0.01, "weight_decay": 0.0}
    assert args["module"]["head_channels"] == 16  # an interpolation sees the trial's value
    assert args["trainer"]["default_root_dir"] == "/trial/dir"  # ${hydra:runtime.output_dir}
    assert "accelerator" not in args["trainer"]  # each trial's comes from lightsweep
    callbacks = spec.hydra_trial(config, "/trial/dir")["callbacks"]
    assert callbacks["model_checkpoint"]["dirpath"] == "/trial/dir/checkpoints"


def test_a_sweep_file_names_the_project_and_its_own_settings_win(
        project: Path, caplog: pytest.LogCaptureFixture) -> None:
    sweep = project / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({
        "hydra": {"config": "configs/train.yaml", "overrides": SEARCH},
        "search": {"num_samples": 3},
        "scheduler": {"name": "asha", "grace_period": 1},
        "space": {"model.optimizer.lr": {"loguniform": [1e-3, 1e-2]}},
    }))
    with caplog.at_level(logging.INFO):
        spec = load_spec(sweep)
    assert spec.search.num_samples == 3 and spec.search.seed == 1234
    assert spec.search_space.distributions["module.optimizer.lr"].low == 1e-3  # type: ignore[attr-defined]
    assert spec.scheduler.max_epochs == 2
    assert "callbacks progress_bar left out" in caplog.text
    assert "trainer accelerator, devices set by lightsweep" in caplog.text


@pytest.mark.parametrize(("overrides", "message"), [
    (["model=nope"], r"model=nope.*Could not find 'model/nope'.*Available options in 'model'.*"
                     r"mnist1d"),
    (["callbacks=early_stopping", *SEARCH],
     r"callbacks\.early_stopping\.monitor: Missing mandatory value"),
    (["trainer.max_epochs=2"], r"metric: the Hydra config sets no optimized_metric\. Fix: pass "
                               r"--metric NAME"),
    ([*SEARCH, "+hydra.sweeper.params.seed='choice(1, 2)'"],
     r"space\.seed: a Hydra project's search sets model\., data\. or trainer\. keys"),
    (["hparams_search=broken", "hydra.sweeper.n_trials=4"],
     r"hydra\.sweeper\.params\.data\.batch_size: 'choice\(32, 64' is not Hydra's override "
     r"grammar"),
    ([*SEARCH, "hydra.sweeper.sampler._target_=optuna.samplers.QMCSampler"],
     r"hydra\.sweeper\.sampler\._target_: optuna\.samplers\.QMCSampler is not a sampler"),
])
def test_mistakes_exit_2_before_ray_naming_the_key(
        project: Path, overrides: list[str], message: str,
        caplog: pytest.LogCaptureFixture) -> None:
    (project / "configs" / "hparams_search" / "broken.yaml").write_text(
        (project / "configs" / "hparams_search" / "mnist1d_optuna.yaml").read_text()
        .replace("choice(32, 64, 128)", "choice(32, 64"))
    assert main(["validate", "--hydra", "configs/train.yaml", *overrides]) == 2
    assert caplog.records[-1].getMessage().startswith("error: ")
    assert re.search(message, caplog.records[-1].getMessage()), caplog.records[-1].getMessage()


def test_validate_checks_the_projects_classes_and_names_the_searched_keys_its_way(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--hydra", "configs/train.yaml", *SEARCH]) == 0
    out = capsys.readouterr().out
    assert "5 searched: model.optimizer.lr, model.optimizer.weight_decay, data.batch_size" in out
    assert "4 trials of at most 2 epochs" in out


def test_a_metric_on_the_command_line_runs_a_config_without_a_sweeper(project: Path) -> None:
    spec = _spec("trainer.max_epochs=3", metric="val/acc", mode="max")
    assert (spec.metric, spec.mode, spec.scheduler.max_epochs) == ("val/acc", "max", 3)
    assert not spec.search_space.searched  # nothing searched: repeats of the config's values


def test_a_lightning_cli_config_and_a_hydra_project_are_not_both_a_base(project: Path) -> None:
    with pytest.raises(SweepError, match="config and hydra: a sweep takes one base"):
        _spec(*SEARCH, config=[str(REPO / "lightning_modules" / "injected" / "config.yaml")])


def test_interpolations_in_a_sweep_file_are_resolved_or_refused(
        write_sweep: SweepWriter, sweep_data: dict[str, Any]) -> None:
    sweep_data["search"]["seed"] = "${scheduler.max_epochs}"
    sweep_data["module_args"]["depth"] = "${scheduler.grace_period}"
    spec = load_spec(write_sweep(sweep_data))
    assert spec.search.seed == spec.scheduler.max_epochs == 4
    assert spec.module_args["depth"] == 1
    sweep_data["search"]["seed"] = "${scheduler.nope}"
    with pytest.raises(SweepError, match=r"search\.seed: .*nope"):
        load_spec(write_sweep(sweep_data))


def test_a_searched_key_overrides_the_value_the_sweep_file_fixes(
        write_sweep: SweepWriter, sweep_data: dict[str, Any],
        caplog: pytest.LogCaptureFixture) -> None:
    sweep_data["module_args"]["lr"] = 0.1
    with caplog.at_level(logging.INFO):
        spec = load_spec(write_sweep(sweep_data))
    assert spec.trial_args({"module.lr": 0.005, "datamodule.batch_size": 32})["module"]["lr"] == 0.005
    assert spec.searched_over_fixed() == ["module.lr"]
    assert "module.lr searched; the value fixed in the sweep file's arguments is a default " \
           "the search overrides" in caplog.text


def test_a_hydra_form_sweep_files_best_trial_is_written_as_objects_hydra_builds(
        tmp_path: Path) -> None:
    from hydra.utils import instantiate

    from tuning.contracts import SEED_KEY
    from tuning.read.results import BestTrial

    spec = load_spec(REPO / "search_spaces" / "mnist1d_hydra.yaml")
    config = {"module.net.width": 48, "module.optimizer.lr": 0.002, "datamodule.batch_size": 32,
              SEED_KEY: 5}
    best = BestTrial(trial_id="t1", config=config, metric="val/acc", value=0.9, epoch=3,
                     checkpoint="/runs/x/t1/checkpoint.ckpt", checkpoint_epoch=3, spec=spec)
    assert best.config_form() == "hydra"
    written = yaml.safe_load(best.write_config(tmp_path / "best.yaml").read_text())
    model, data = instantiate(written["model"]), instantiate(written["data"])
    assert model.net.layers[0].out_channels == 48
    assert model.hparams.optimizer.keywords["lr"] == 0.002
    assert data.batch_size == 32
    assert (written["seed"], written["trainer"]["max_epochs"]) == (5, spec.scheduler.max_epochs)
    overrides = best.hydra_overrides()
    assert {"model.net.width=48", "model.optimizer.lr=0.002", "data.batch_size=32",
            "seed=5"} <= set(overrides)
    # The searched values come after the fixed objects they lie in, as Hydra applies them.
    assert overrides.index("model.net.width=48") > next(
        i for i, o in enumerate(overrides) if o.startswith("model.net={"))
