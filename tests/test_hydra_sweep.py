"""A project laid out like the Lightning-Hydra template, tuned from its own configs tree and its
own hparams_search config, unchanged, with overrides on the command line alone and no
PROJECT_ROOT set; its best trial back as a loaded model and as an experiment config that its
own configs compose and its own train.py trains."""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.scoring import logged_at_checkpoint, validate
from tuning import fetch_best, launch
from tuning.cli import main
from tuning.config.hydra_project import ROOT_ENV
from tuning.record import Ledger

pytestmark = [pytest.mark.ray]

PROJECT = REPO / "lightning_modules" / "hydra_project"
OVERRIDES = ["hparams_search=mnist1d_optuna", "trainer.max_epochs=2",
             "+trainer.limit_train_batches=20", "hydra.sweeper.n_trials=3"]


@pytest.fixture(scope="module")
def hydra_sweep(ray_session: None, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[tuple[Path, Path]]:
    """The example project copied (without its data), launched from its root as its users do:
    three trials of two epochs. Yields the project and the experiment."""
    project = tmp_path_factory.mktemp("hydra") / "project"
    shutil.copytree(PROJECT, project, ignore=lambda folder, names: [
        n for n in names if Path(folder) == PROJECT and n in ("data", "logs")])
    cwd, root, path = os.getcwd(), os.environ.pop(ROOT_ENV, None), list(sys.path)
    os.chdir(project)
    try:
        outcome = launch(None, hydra={"config": "configs/train.yaml", "overrides": OVERRIDES},
                         storage=str(project.parent / "runs"), name="hydra", wandb=False)
        assert (outcome.finished, outcome.errored) == (3, 0)
        yield project, Path(outcome.path.uri)
    finally:
        os.chdir(cwd)
        sys.path[:] = path
        os.environ.pop(ROOT_ENV, None)
        if root is not None:
            os.environ[ROOT_ENV] = root


@pytest.mark.timeout(600)
def test_trials_take_values_in_the_projects_declared_domains_and_its_own_callbacks(
        hydra_sweep: tuple[Path, Path]) -> None:
    project, experiment = hydra_sweep
    ledger = Ledger.load(experiment)
    assert len(ledger.trials) == 3
    for trial in ledger.trials.values():
        config = trial.config
        assert 3e-4 <= config["module.optimizer.lr"] <= 3e-2
        assert 0.0 <= config["module.optimizer.weight_decay"] <= 1e-3
        assert config["datamodule.batch_size"] in (32, 64, 128)
        assert config["module.net.channels"] in (16, 32, 64)
        assert config["module.net.depth"] in (2, 3)
        # The project's ModelCheckpoint, built in the trial, wrote into the trial's directory
        # (its dirpath is ${paths.output_dir}/checkpoints).
        assert (experiment / f"trial_{trial.trial_id}" / "checkpoints" / "last.ckpt").is_file()
        assert "val/acc_best" in trial.history[-1].metrics  # optimized_metric, as logged
    # ${paths.data_dir} is ${oc.env:PROJECT_ROOT}/data/: found from .project-root, unset by the user.
    assert (project / "data" / "mnist1d.npz").is_file()
    # The leaderboard names the values as the project's config does.
    rows = ledger.rows()
    assert set(rows[0]["config"]) >= {"model.optimizer.lr", "data.batch_size", "model.net.depth"}


@pytest.mark.timeout(300)
def test_the_best_model_loads_and_scores_what_it_logged(hydra_sweep: tuple[Path, Path]) -> None:
    _, experiment = hydra_sweep
    best = fetch_best(experiment)
    model = best.load_model()  # net rebuilt from the trial's config (ignored by the module)
    assert model.net.head.in_features % best.config["module.net.channels"] == 0
    # The optimizer partial the module calls in configure_optimizers holds the trial's values.
    assert model.hparams.optimizer.keywords == pytest.approx({
        "lr": best.config["module.optimizer.lr"],
        "weight_decay": best.config["module.optimizer.weight_decay"]})
    assert validate(model, best.load_datamodule())["val/acc"] == pytest.approx(
        logged_at_checkpoint(experiment, best), abs=1e-4)


@pytest.mark.timeout(300)
def test_the_best_trial_as_an_experiment_config_the_project_composes_and_trains(
        hydra_sweep: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    project, experiment = hydra_sweep
    best = fetch_best(experiment)
    out = project / "configs" / "experiment" / "best.yaml"
    assert main(["best", str(experiment), "--config-out", str(out)]) == 0
    assert main(["best", str(experiment), "--config-out", str(out)]) == 2  # never overwritten
    text = out.read_text()
    assert text.startswith("# @package _global_\n")
    assert f"# ckpt_path: {best.checkpoint}" in text
    capsys.readouterr()
    assert main(["best", str(experiment), "--overrides"]) == 0
    overrides = capsys.readouterr().out.split()
    assert f"data.batch_size={best.config['datamodule.batch_size']}" in overrides

    os.environ[ROOT_ENV] = str(project)
    try:
        for given in (["experiment=best"], overrides):
            with initialize_config_dir(config_dir=str(project / "configs"), version_base="1.3"):
                cfg = compose("train.yaml", overrides=given)
            model = instantiate(cfg.model)
            assert model.hparams.optimizer.keywords["lr"] == pytest.approx(
                best.config["module.optimizer.lr"])
            assert cfg.model.net.channels == best.config["module.net.channels"]
            assert cfg.data.batch_size == best.config["datamodule.batch_size"]
            assert cfg.seed == best.config["seed"]
            assert (cfg.trainer.max_epochs, cfg.trainer.limit_train_batches) == (2, 20)
    finally:
        del os.environ[ROOT_ENV]

    # The project's own train.py trains it, and reaches what the trial logged at its last epoch.
    record = Ledger.load(experiment).trials[best.trial_id]
    result = subprocess.run(
        [sys.executable, "src/train.py", "experiment=best", "callbacks.progress_bar.refresh_rate=1"],
        cwd=project, capture_output=True, text=True, timeout=240,
        env={k: v for k, v in os.environ.items() if k != ROOT_ENV})
    assert result.returncode == 0, result.stderr[-3000:]
    if record.epochs == 2:  # a trial ASHA stopped at epoch 1 logged no second epoch to match
        shown = re.findall(r"val/acc=([0-9.]+)", result.stderr + result.stdout)
        assert shown, result.stderr[-2000:]
        last = next(e for e in record.history if e.epoch == 2).metrics["val/acc"]
        assert math.isclose(float(shown[-1]), last, abs_tol=1.5e-3)
    assert yaml.safe_load(text)["trainer"]["max_epochs"] == 2
