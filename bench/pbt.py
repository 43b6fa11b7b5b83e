"""Whether the values population-based training chose are the values training uses:
``python -m bench.pbt`` (part of ``make bench``).

Two PBT runs of the same population (MNIST-1D's CNN, the learning rate searched and mutated),
in one invocation, each on a Ray of its own:

- lightsweep: ``search_spaces/mnist1d_pbt.yaml`` with the learning rate alone mutated, shortened
  to ``--epochs``, as ``run_tune.py launch`` runs it;
- Ray Tune's documented recipe for PBT with a Lightning function trainable: the module built
  from the trial's config, or, when Tune hands the trial a checkpoint (PBT's exploit), loaded
  with ``load_from_checkpoint`` and the Trainer resumed from it, a checkpoint reported to Tune
  each epoch.

Each epoch's report carries the learning rate the optimizer used. For every exploit that
changed the learning rate, the first epoch after it counts as applied when the optimizer's rate
equals the one PBT put in the trial's config. Merges ``pbt_lr_applied_fraction`` and
``ray_pbt_lr_applied_fraction`` (and ``pbt_exploits``: what each counted) into
``bench/results/latest.json``.
"""

from __future__ import annotations

import argparse
import logging
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.results_file import RESULTS, merge_results
from tuning.contracts import GENERATION_METRIC
from tuning.record import Ledger

REPO = Path(__file__).parents[1]
PBT_SWEEP = REPO / "search_spaces" / "mnist1d_pbt.yaml"
EPOCHS, INTERVAL = 12, 2

logger = logging.getLogger("bench.pbt")


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6)


def _lightsweep(storage: Path, epochs: int) -> dict[str, Any]:
    data = yaml.safe_load(PBT_SWEEP.read_text())
    data["scheduler"].update({"max_epochs": epochs, "perturbation_interval": INTERVAL,
                              "mutate": ["module.lr"]})
    data["space"]["module.width"] = 32  # one width: the recipe below builds one model
    data["space"]["datamodule.batch_size"] = 64
    data["space"].pop("module.weight_decay")
    data["datamodule_args"] = {"data_dir": str(storage / "data")}
    sweep = storage / "pbt.yaml"
    sweep.write_text(yaml.safe_dump(data, sort_keys=False))
    start = time.perf_counter()
    subprocess.run([sys.executable, "run_tune.py", "launch", str(sweep), "--storage",
                    str(storage), "--name", "pbt"], cwd=REPO, check=True)
    wall = time.perf_counter() - start
    checked = applied = 0
    for trial in Ledger.load(str(storage / "pbt")).trials.values():
        for exploit in trial.lineage:
            if _same(exploit["values"]["module.lr"], exploit["before"]["module.lr"]):
                continue  # the rate did not change: nothing to tell
            first = next((e for e in trial.history if e.epoch == exploit["epoch"] + 1
                          and e.metrics.get(GENERATION_METRIC) == exploit["generation"]), None)
            if first is None:  # trained again after a later exploit: not this one's epoch
                continue
            checked += 1
            applied += _same(first.metrics["optimizer/lr"], exploit["values"]["module.lr"])
    return {"wall_s": wall, "exploits": checked, "applied": applied}


def _recipe_trainable(config: dict[str, Any]) -> None:
    """Ray Tune's PBT with a Lightning function trainable, as its docs show it."""
    import lightning.pytorch as pl
    import torch
    from ray import tune

    from lightning_modules.classifier import Classifier
    from lightning_modules.datamodules import MNIST1DDataModule

    class ReportToTune(pl.Callback):
        def __init__(self, checkpoint_lr: float) -> None:
            self.checkpoint_lr = checkpoint_lr  # the rate the run's checkpoint had (0: none)
            self.first = True

        def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
            metrics = {"val/acc": float(trainer.callback_metrics["val/acc"]),
                       "epoch": trainer.current_epoch + 1,
                       "optimizer/lr": trainer.optimizers[0].param_groups[0]["lr"],
                       "config_lr": config["lr"], "checkpoint_lr": self.checkpoint_lr,
                       "first_after_restore": self.first and self.checkpoint_lr > 0}
            self.first = False
            with tempfile.TemporaryDirectory() as tmp:
                trainer.save_checkpoint(f"{tmp}/checkpoint.ckpt")
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))

    torch.set_num_threads(1)
    datamodule = MNIST1DDataModule(batch_size=64, data_dir=config["data_dir"])
    checkpoint = tune.get_checkpoint()
    with tempfile.TemporaryDirectory() as tmp:
        ckpt_path = None
        if checkpoint is not None:
            with checkpoint.as_directory() as directory:
                ckpt_path = f"{tmp}/checkpoint.ckpt"
                Path(ckpt_path).write_bytes(Path(directory, "checkpoint.ckpt").read_bytes())
            model = Classifier.load_from_checkpoint(ckpt_path)
            checkpoint_lr = float(model.hparams["lr"])
        else:
            model = Classifier(arch="cnn1d", input_shape=[40], width=32, depth=3,
                               lr=config["lr"], optimizer="adamw")
            checkpoint_lr = 0.0
        trainer = pl.Trainer(max_epochs=config["epochs"], accelerator="cpu", logger=False,
                             enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, callbacks=[ReportToTune(checkpoint_lr)])
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)


def _ray_recipe(storage: Path, epochs: int, population: int) -> dict[str, Any]:
    import ray
    from ray import tune
    from ray.tune.schedulers import PopulationBasedTraining

    ray.init(address="local", num_cpus=2, include_dashboard=False)
    start = time.perf_counter()
    try:
        results = tune.Tuner(
            tune.with_resources(_recipe_trainable, {"CPU": 2 / population}),
            param_space={"lr": tune.loguniform(1e-3, 3e-2), "epochs": epochs,
                         "data_dir": str(storage / "data")},
            tune_config=tune.TuneConfig(
                metric="val/acc", mode="max", num_samples=population,
                scheduler=PopulationBasedTraining(
                    time_attr="epoch", perturbation_interval=INTERVAL, quantile_fraction=0.25,
                    resample_probability=0.25,
                    hyperparam_mutations={"lr": tune.loguniform(1e-3, 3e-2)})),
            run_config=tune.RunConfig(name="ray-recipe", storage_path=str(storage), verbose=0),
        ).fit()
    finally:
        ray.shutdown()
    wall = time.perf_counter() - start
    checked = applied = 0
    for index in range(len(results)):
        frame = results[index].metrics_dataframe
        for row in frame.to_dict("records") if frame is not None else []:
            # The first epoch after a restore from a checkpoint of another rate: an exploit.
            if row["first_after_restore"] and not _same(row["checkpoint_lr"], row["config_lr"]):
                checked += 1
                applied += _same(row["optimizer/lr"], row["config_lr"])
    return {"wall_s": wall, "exploits": checked, "applied": applied}


def run(epochs: int = EPOCHS) -> dict[str, Any]:
    population = yaml.safe_load(PBT_SWEEP.read_text())["search"]["num_samples"]
    with tempfile.TemporaryDirectory(prefix="lightsweep-bench-pbt-") as tmp:
        logger.info("bench: lightsweep's PBT ...")
        ours = _lightsweep(Path(tmp), epochs)
        logger.info("bench: Ray Tune's documented PBT recipe with Lightning ...")
        recipe = _ray_recipe(Path(tmp), epochs, population)
    figures = {
        "pbt_lr_applied_fraction": ours["applied"] / ours["exploits"] if ours["exploits"] else None,
        "ray_pbt_lr_applied_fraction":
            recipe["applied"] / recipe["exploits"] if recipe["exploits"] else None,
    }
    for key, value in figures.items():
        print(f"{key}: {value}")
    print(f"exploits that changed the rate: lightsweep {ours['exploits']}, "
          f"Ray's recipe {recipe['exploits']}")
    return {**figures, "pbt_exploits": {"epochs": epochs, "population": population,
                                        "interval": INTERVAL, "lightsweep": ours,
                                        "ray_recipe": recipe}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="each trial's epochs")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON file (default {RESULTS})")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    merge_results(args.out, run(args.epochs))
    print(f"\nmerged into: {args.out}")


if __name__ == "__main__":
    main()
