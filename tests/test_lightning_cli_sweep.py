"""A LightningCLI project tuned from its own config, unchanged (lightning_modules/injected):
searched values inside injected objects, a conditional optimizer choice, the best model loaded
back whole, and the best trial run again by the project's own LightningCLI script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from lightning_modules.nets import CNN1d
from tests.conftest import REPO
from tests.scoring import logged_at_checkpoint, validate
from tests.wandb_files import offline_runs
from tuning import fetch_best, launch
from tuning.cli import main
from tuning.driver.warm_start import optuna_trials
from tuning.record import Ledger

pytestmark = [pytest.mark.ray]

SWEEP = REPO / "search_spaces" / "mnist1d_lightning_cli.yaml"


@pytest.fixture(scope="module")
def cli_sweep(ray_session, tmp_path_factory) -> Path:
    """Two trials of two epochs; the config's seed (7) has TPE's first two take both branches."""
    root = tmp_path_factory.mktemp("lightning-cli")
    outcome = launch(SWEEP, num_samples=2, max_epochs=2, storage=str(root), name="cli")
    assert (outcome.finished, outcome.errored) == (2, 0)
    return Path(outcome.path.uri)


@pytest.mark.oldest
@pytest.mark.timeout(600)
def test_both_optimizer_branches_run_with_their_own_arguments(cli_sweep: Path) -> None:
    ledger = Ledger.load(cli_sweep)
    configs = {t.config["module.optimizer"]: t.config for t in ledger.trials.values()}
    assert set(configs) == {"AdamW", "SGD"}
    assert "module.optimizer[SGD].init_args.momentum" in configs["SGD"]
    assert not any("[AdamW]" in key for key in configs["SGD"])
    assert "module.optimizer[AdamW].init_args.weight_decay" in configs["AdamW"]
    # Optuna is told each trial with the parameters of its own branch only.
    for trial in optuna_trials(ledger):
        branch = trial.params["module.optimizer"]
        assert all(f"[{branch}]" in k for k in trial.params if "[" in k)
    # W&B: one run per trial, its config the trial's own parameters.
    runs = offline_runs(cli_sweep)
    assert sorted(r.config["module.optimizer"] for r in runs) == ["AdamW", "SGD"]


@pytest.mark.oldest
@pytest.mark.timeout(120)
def test_the_best_model_loads_whole_and_reproduces_its_logged_metric(cli_sweep: Path) -> None:
    best = fetch_best(cli_sweep)
    model = best.load_model()  # net was left out of the checkpoint's hyperparameters
    assert isinstance(model.net, CNN1d)
    assert model.net.layers[0].out_channels == best.config["module.net.init_args.width"]
    branch = best.config["module.optimizer"]
    optimizer = model.configure_optimizers()
    assert type(optimizer).__name__ == branch
    assert optimizer.param_groups[0]["lr"] == pytest.approx(
        best.config[f"module.optimizer[{branch}].init_args.lr"])
    assert validate(model, best.load_datamodule())["val/acc"] == pytest.approx(
        logged_at_checkpoint(cli_sweep, best), abs=1e-4)


@pytest.mark.timeout(300)
def test_the_best_trial_as_a_config_runs_in_the_projects_own_lightning_cli(
        cli_sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "best.yaml"
    assert main(["best", str(cli_sweep), "--config-out", str(out)]) == 0
    best = fetch_best(cli_sweep)
    written = yaml.safe_load(out.read_text())
    assert f"# ckpt_path: {best.checkpoint}" in out.read_text()
    assert written["model"]["optimizer"]["class_path"].endswith(best.config["module.optimizer"])
    assert written["model"]["net"]["init_args"]["width"] == best.config["module.net.init_args.width"]
    assert written["trainer"]["devices"] == 1  # the project's own settings, kept
    assert main(["best", str(cli_sweep), "--config-out", str(out)]) == 2  # never overwritten
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "lightning_modules.injected", "fit", "--config", str(out),
         "--trainer.max_epochs=1", "--trainer.limit_train_batches=4",
         "--trainer.limit_val_batches=2", "--trainer.enable_progress_bar=false"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "`Trainer.fit` stopped: `max_epochs=1` reached" in result.stderr + result.stdout


@pytest.mark.timeout(300)
def test_a_hydra_form_sweep_runs_and_its_partial_gets_the_searched_value(
        ray_session, tmp_path: Path) -> None:
    outcome = launch(REPO / "search_spaces" / "mnist1d_hydra.yaml", storage=str(tmp_path),
                     smoke=True)
    assert (outcome.finished, outcome.errored) == (2, 0)
    best = fetch_best(outcome.path)
    model = best.load_model()
    optimizer = model.configure_optimizers()
    assert isinstance(optimizer, torch.optim.Adam)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(best.config["module.optimizer.lr"])
    assert model.net.layers[0].out_channels == best.config["module.net.width"]
