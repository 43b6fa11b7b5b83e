"""The ways of running the workload that the benchmark compares, one per function.

Each runs the whole sweep (8 trials, ASHA or Optuna's successive halving, TPE seeded) and returns
its wall time and, per trial, the wall time and the in-trial figures
:class:`bench.timed.TimedClassifier` logged. Run one alone with ``python -m bench.variants NAME
OUT.json`` (the benchmark does, so that each gets a fresh process tree whose memory it can
measure).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from bench import workload as w

Result = dict[str, Any]


def _trial(wall_s: float, last: dict[str, Any], gaps: list[float], config: dict[str, Any]) -> Result:
    return {"wall_s": wall_s, "fit_s": last["bench/fit_s"], "samples": last["bench/samples"],
            "epochs": int(last["bench/epoch"]), "value": last[w.METRIC], "config": config,
            "report_gaps_s": gaps}


def tune_trials(experiment: Path) -> list[Result]:
    """Per-trial figures from Ray Tune's ``result.json`` files under ``experiment``, and, for a
    Train trial, its workers' starts (``worker_starts.jsonl``): how long before its run asked
    for it each worker's process had started (``head_start_s``; negative: started after), and
    how long from the run's start until the worker's train loop began (``wait_s``)."""
    from tuning.trial.warm_pool import WORKER_STARTS_FILE

    trials = []
    for result_file in sorted(experiment.glob("*/result.json")):
        results = [json.loads(line) for line in result_file.read_text().splitlines() if line]
        results = [r for r in results if "bench/fit_s" in r]
        if not results:
            continue
        last = results[-1]
        gaps = [r["bench/report_gap_s"] for r in results[1:]]
        starts_file = result_file.parent / WORKER_STARTS_FILE
        starts = ([json.loads(line) for line in starts_file.read_text().splitlines()]
                  if starts_file.is_file() else [])
        trials.append({**_trial(last["time_total_s"], last, gaps, last["config"]),
                       "dir": result_file.parent.name,
                       "workers": [{"head_start_s": s["attempt_start"] - s["process_start"],
                                    "wait_s": s["loop_start"] - s["attempt_start"],
                                    "started_ahead": s["started_ahead"]}
                                   for s in starts if "loop_start" in s]})
    return trials


def lightsweep(workdir: Path, alone: bool = False, runner: str = "train") -> Result:
    """(a) This project: ``tuning.launch`` on the workload's sweep (``alone``: one trial;
    ``runner``: ``resources.trial_runner``)."""
    from tuning import launch
    from tuning.config.spec import SweepSpec

    spec = SweepSpec.model_validate(w.sweep_spec_data(str(workdir / "runs"), alone, runner))
    start = time.perf_counter()
    outcome = launch(spec, name="bench")
    wall = time.perf_counter() - start
    return {"wall_s": wall, "trials": tune_trials(Path(outcome.path.uri))}


def _space() -> dict[str, Any]:
    from ray import tune

    return {"lr": tune.loguniform(*w.LR_RANGE), "batch_size": tune.choice(w.BATCH_SIZES)}


def _tune_config(time_attr: str) -> Any:
    import optuna
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    return tune.TuneConfig(
        metric=w.METRIC, mode=w.MODE, num_samples=w.TRIALS, max_concurrent_trials=w.CONCURRENCY,
        search_alg=OptunaSearch(sampler=optuna.samplers.TPESampler(seed=w.SEED)),
        scheduler=ASHAScheduler(time_attr=time_attr, max_t=w.MAX_EPOCHS,
                                grace_period=w.GRACE_PERIOD, reduction_factor=w.REDUCTION_FACTOR),
    )


def _recipe_worker(config: dict[str, Any]) -> None:
    import lightning.pytorch as pl
    import ray.train
    from ray.train.lightning import (
        RayDDPStrategy,
        RayLightningEnvironment,
        RayTrainReportCallback,
        prepare_trainer,
    )

    from bench.timed import TimedClassifier
    from lightning_modules.datamodules import DigitsDataModule

    model = TimedClassifier(**w.MODULE_ARGS, lr=config["lr"])
    trainer = pl.Trainer(
        max_epochs=w.MAX_EPOCHS, devices="auto", accelerator="cpu", strategy=RayDDPStrategy(),
        plugins=[RayLightningEnvironment()], callbacks=[RayTrainReportCallback()],
        enable_checkpointing=False, enable_progress_bar=False, logger=False,
    )
    trainer = prepare_trainer(trainer)
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as ckpt_dir:
            path = os.path.join(ckpt_dir, RayTrainReportCallback.CHECKPOINT_NAME)
            trainer.fit(model, datamodule=DigitsDataModule(config["batch_size"]), ckpt_path=path)
    else:
        trainer.fit(model, datamodule=DigitsDataModule(config["batch_size"]))


def _recipe_driver(config: dict[str, Any], storage: str) -> None:
    import ray.train
    from ray import tune
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    trainer = TorchTrainer(
        _recipe_worker, train_loop_config=config,
        scaling_config=ray.train.ScalingConfig(num_workers=1, resources_per_worker={"CPU": 1}),
        # ray.train exports Train V2's RunConfig at run time; type checkers see V1's.
        run_config=ray.train.RunConfig(
            name=tune.get_context().get_trial_id(), storage_path=storage,
            callbacks=[cast(Any, TuneReportCallback())],
        ),
    )
    trainer.fit()


def ray_recipe(workdir: Path) -> Result:
    """(b) Ray's documented recipe: a Tune function launching a Train V2 TorchTrainer with
    Ray's Lightning strategy, environment and report callback, TuneReportCallback, OptunaSearch
    and ASHA. The trial drivers take no CPU (else, on 2 CPUs, their workers never start), only
    memory: Tune refuses an empty request."""
    import ray
    from ray import tune

    start = time.perf_counter()
    ray.init(address="local", num_cpus=w.CONCURRENCY, logging_level=logging.WARNING,
             runtime_env={"env_vars": {"PYTHONPATH": os.getcwd()}})
    trainable = tune.with_resources(
        tune.with_parameters(_recipe_driver, storage=str(workdir / "train")),
        {"CPU": 0, "memory": 256 * 1024**2})
    tuner = tune.Tuner(trainable, param_space=_space(), tune_config=_tune_config(
        "training_iteration"), run_config=tune.RunConfig(
        name="bench", storage_path=str(workdir / "ray"), verbose=0))
    tuner.fit()
    wall = time.perf_counter() - start
    ray.shutdown()
    return {"wall_s": wall, "trials": tune_trials(workdir / "ray" / "bench")}


def _tune_lightning_trial(config: dict[str, Any]) -> None:
    import lightning.pytorch as pl
    import torch
    from ray.tune.integration.pytorch_lightning import TuneReportCheckpointCallback

    from bench.timed import TimedClassifier
    from lightning_modules.datamodules import DigitsDataModule

    torch.set_num_threads(1)
    model = TimedClassifier(**w.MODULE_ARGS, lr=config["lr"])
    trainer = pl.Trainer(
        max_epochs=w.MAX_EPOCHS, accelerator="cpu", devices=1, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, logger=False,
        callbacks=[TuneReportCheckpointCallback(on="validation_end")],
    )
    trainer.fit(model, datamodule=DigitsDataModule(config["batch_size"]))


def tune_plain_lightning(workdir: Path) -> Result:
    """(c) Ray Tune running Lightning in the trial's own process, without Ray Train (1 CPU per
    trial, checkpoint and report at each validation end)."""
    import ray
    from ray import tune

    start = time.perf_counter()
    ray.init(address="local", num_cpus=w.CONCURRENCY, logging_level=logging.WARNING,
             runtime_env={"env_vars": {"PYTHONPATH": os.getcwd()}})
    tuner = tune.Tuner(
        tune.with_resources(_tune_lightning_trial, {"CPU": 1}), param_space=_space(),
        tune_config=_tune_config("training_iteration"),
        run_config=tune.RunConfig(name="bench", storage_path=str(workdir / "ray"), verbose=0))
    tuner.fit()
    wall = time.perf_counter() - start
    ray.shutdown()
    return {"wall_s": wall, "trials": tune_trials(workdir / "ray" / "bench")}


def optuna_alone(workdir: Path) -> Result:
    """(d) Optuna alone: ``study.optimize`` with TPE, successive halving (ASHA's pruner) and
    Optuna's Lightning pruning callback, two trials at a time (threads, one torch thread each)."""
    import lightning.pytorch as pl
    import optuna
    import torch
    from optuna_integration import PyTorchLightningPruningCallback

    from bench.timed import TimedClassifier
    from lightning_modules.datamodules import DigitsDataModule

    trials: list[Result] = []

    def objective(trial: optuna.Trial) -> float:
        torch.set_num_threads(1)
        began = time.perf_counter()
        lr = trial.suggest_float("lr", *w.LR_RANGE, log=True)
        batch_size = trial.suggest_categorical("batch_size", w.BATCH_SIZES)
        model = TimedClassifier(**w.MODULE_ARGS, lr=lr)
        history: list[dict[str, float]] = []

        class Record(pl.Callback):
            def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
                if not trainer.sanity_checking:
                    history.append({k: float(v) for k, v in trainer.callback_metrics.items()})

        trainer = pl.Trainer(
            max_epochs=w.MAX_EPOCHS, accelerator="cpu", devices=1, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False, logger=False,
            callbacks=[Record(), PyTorchLightningPruningCallback(trial, monitor=w.METRIC)],
        )
        try:
            trainer.fit(model, datamodule=DigitsDataModule(batch_size))
        finally:
            gaps = [h["bench/report_gap_s"] for h in history[1:]]
            trials.append(_trial(time.perf_counter() - began, history[-1], gaps,
                                 {"lr": lr, "batch_size": batch_size}))
        return history[-1][w.METRIC]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = time.perf_counter()
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=w.SEED),
        pruner=optuna.pruners.SuccessiveHalvingPruner(
            min_resource=w.GRACE_PERIOD, reduction_factor=w.REDUCTION_FACTOR),
    )
    study.optimize(objective, n_trials=w.TRIALS, n_jobs=w.CONCURRENCY)
    return {"wall_s": time.perf_counter() - start, "trials": trials}


def plain_lightning(configs: list[dict[str, Any]]) -> Result:
    """(e) The floor: the given trials' fits in plain Lightning, one after another, each for the
    epochs it ran in the sweep."""
    import lightning.pytorch as pl
    import torch

    from bench.timed import TimedClassifier
    from lightning_modules.datamodules import DigitsDataModule

    torch.set_num_threads(1)
    trials = []
    start = time.perf_counter()
    for config in configs:
        began = time.perf_counter()
        model = TimedClassifier(**w.MODULE_ARGS, lr=config["lr"])
        trainer = pl.Trainer(
            max_epochs=config["epochs"], accelerator="cpu", devices=1, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False, logger=False,
        )
        trainer.fit(model, datamodule=DigitsDataModule(config["batch_size"]))
        last = {k: float(v) for k, v in trainer.callback_metrics.items()}
        trials.append(_trial(time.perf_counter() - began, last, [], config))
    return {"wall_s": time.perf_counter() - start, "trials": trials}


def lightsweep_alone(workdir: Path) -> Result:
    """:data:`workload.ALONE_CONFIG`'s one trial through lightsweep, nothing else running."""
    return lightsweep(workdir, alone=True)


def lightsweep_inline(workdir: Path) -> Result:
    """(a') The same sweep with ``resources.trial_runner: inline``."""
    return lightsweep(workdir, runner="inline")


def lightsweep_inline_alone(workdir: Path) -> Result:
    """:data:`workload.ALONE_CONFIG`'s one trial inline, nothing else running."""
    return lightsweep(workdir, alone=True, runner="inline")


VARIANTS: dict[str, Callable[[Path], Result]] = {
    "lightsweep": lightsweep, "lightsweep_alone": lightsweep_alone,
    "lightsweep_inline": lightsweep_inline, "lightsweep_inline_alone": lightsweep_inline_alone,
    "ray_recipe": ray_recipe,
    "tune_plain_lightning": tune_plain_lightning, "optuna_alone": optuna_alone,
}


def main(argv: list[str]) -> None:
    name, out = argv[0], Path(argv[1])
    logging.basicConfig(level=logging.WARNING)
    if name == "plain_lightning":
        result = plain_lightning(json.loads(Path(argv[2]).read_text()))
    else:
        result = VARIANTS[name](out.parent / name)
    out.write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
