"""What fits a trial: the user's DataModule, LightningModule and a Lightning Trainer, fitted from
the trial's last checkpoint if it has one, on each Ray Train worker of the trial (or, with
``trial_runner: inline``, in Tune's trial process: :mod:`tuning.trial.session`).

Only processes that fit import this module (and so Lightning): a Train trial's driver and Train's
controller never need it, and each would pay Lightning's seconds of import time and its memory.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from tuning._internals.logs import TUNE_STORAGE_LOGGER, train_context_logger, verbose
from tuning.config.checks import normalize_precision
from tuning.config.gpus import memory_fraction
from tuning.config.objects import apply_optimizer, build, build_arguments
from tuning.config.spec import ResourcesConfig, SweepSpec
from tuning.config.targets import import_from_launch_directory, lightning_namespace, resolve_class
from tuning.contracts import SEED_KEY, LoopConfig
from tuning.record.layout import CHECKPOINT_NAME
from tuning.trial.callbacks import build_callbacks, build_hydra_callbacks
from tuning.trial.explored import explored_values_callback
from tuning.trial.lightning_compat import prepare, ray_lightning
from tuning.trial.model_cost import model_cost_callback
from tuning.trial.session import TrainSession, TrialSession
from tuning.trial.tracking import finish_wandb, wandb_logger
from tuning.trial.warm_pool import note_worker_env

# Defaults for the Lightning Trainer inside a trial; the sweep file's trainer_args win.
TRAINER_DEFAULTS: dict[str, Any] = {
    "logger": False,
    "enable_checkpointing": False,  # lightsweep's report callback checkpoints every epoch
    "enable_progress_bar": False,
    "enable_model_summary": False,
}


def run_in_launch_directory(spec: SweepSpec, local: bool) -> None:
    """Runs the trial's code where the user launched the sweep, so that a relative path (an
    argument's, or a default in the user's own code, ``data_dir="./data"``) means what it meant
    there: on the launching machine (``local``), the launch directory; on a cluster's node, the
    working directory Ray shipped, where the process already is. A Hydra project's root is set
    up as its own entry point does."""
    if local and spec.launch_dir and os.path.isdir(spec.launch_dir):
        os.chdir(spec.launch_dir)
        # The user's modules import from there too, whichever Ray started this process.
        import_from_launch_directory()
    spec.enter_project(os.getcwd())


def _quiet_worker_logs() -> None:
    if verbose():  # launch --verbose: every line, from every worker
        return
    # Every worker of every trial would repeat Lightning's start-up banner and Ray's per-report
    # lines on the driver's console; warnings and errors still come through.
    for name in ("lightning.pytorch", "pytorch_lightning", "lightning.fabric", "lightning_fabric",
                 "ray.train", train_context_logger(), TUNE_STORAGE_LOGGER):
        if name is None:
            continue
        logging.getLogger(name).setLevel(logging.WARNING)
    # Lightning 2.6 on torch 2.14 warns about its own use of a torch internal, once per worker.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    # A trial of few batches (launch --smoke, limit_train_batches) would say once per trial
    # that its epoch is shorter than Lightning's logging interval: epoch-level metrics are
    # what a sweep reports, so that interval does not matter here.
    warnings.filterwarnings("ignore", message=r".*is smaller than the logging interval")
    # Lightning sees SLURM's srun on the machine and suggests it, once per worker; a sweep's
    # workers are Ray's (its SLURM jobs: tuning.platforms.slurm).
    warnings.filterwarnings("ignore", message=r".*The `srun` command is available on your system")


def _strategy_args(pl: Any, session: TrialSession) -> dict[str, Any]:
    """The Trainer's strategy: Ray's DDP across the trial's workers.

    A one-worker trial trains on its one device without DDP: a DDP wrapper around a single
    process only adds a gradient all-reduce to every step, which cost a small model ~40% of its
    throughput in bench/. The run, its reports and checkpoints are Ray Train's all the same.
    """
    if session.world_size == 1:
        # The device Ray gave this process, as Ray's DDP uses.
        return {"strategy": pl.strategies.SingleDeviceStrategy(session.device()), "devices": 1}
    strategy_cls, environment_cls, _ = ray_lightning(pl)
    return {"strategy": strategy_cls(), "plugins": [environment_cls()], "devices": "auto"}


def _set_up_device(resources: ResourcesConfig, session: TrialSession) -> None:
    """The worker's share of its GPU, and how float32 matrix products run."""
    import torch

    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and torch.get_num_threads() != int(threads):
        # A worker started ahead (tuning.trial.warm_pool) imported torch before Ray set
        # OMP_NUM_THREADS to its CPUs, so torch sized its thread pool to the whole machine:
        # fits sharing the cores then ran 3-9x slower (bench/, 2 cores).
        torch.set_num_threads(int(threads))
    if resources.float32_matmul_precision is not None:
        torch.set_float32_matmul_precision(resources.float32_matmul_precision)
    fraction = memory_fraction(resources.gpus_per_worker)
    if fraction is not None:
        # Trials sharing a card each get their share of its memory: one that outgrows it
        # fails alone with CUDA's out-of-memory error instead of starving its neighbours.
        torch.cuda.set_per_process_memory_fraction(fraction, session.device())


def _profiler(pl: Any, name: str, trial_dir: str, rank: int) -> Any:
    classes = {"simple": "SimpleProfiler", "advanced": "AdvancedProfiler",
               "pytorch": "PyTorchProfiler"}
    if name not in classes:
        return name  # Lightning's own error names what it accepts
    return getattr(pl.profilers, classes[name])(dirpath=f"{trial_dir}/profiler",
                                                filename=f"rank{rank}")


def train_worker(given: LoopConfig | Mapping[str, Any], session: TrialSession | None = None) -> None:
    """One process of a trial: builds the user's DataModule, LightningModule and Trainer, and fits.

    Args:
        given: The trial's :class:`~tuning.contracts.LoopConfig` (as Ray Train's dict, in a Train
            worker).
        session: Where it runs and reports; a Ray Train worker's (:class:`TrainSession`) if None.
    """
    loop_config = LoopConfig.of(given)
    train = session is None
    session = session or TrainSession()
    spec = loop_config.spec
    run_in_launch_directory(spec, loop_config.local)
    # A local experiment's trial directory; a cloud experiment's trial writes its files here.
    trial_dir = loop_config.trial_dir or tempfile.mkdtemp(prefix="lightsweep-trial-")
    args = spec.trial_args(loop_config.config, output_dir=trial_dir)
    module_cls = resolve_class(spec.module, "module")
    datamodule_cls = resolve_class(spec.datamodule, "datamodule")
    world_size = session.world_size
    _set_up_device(spec.resources, session)
    if train:
        note_worker_env(loop_config)
    _quiet_worker_logs()  # after the user's imports, which may set Lightning's levels
    pl = lightning_namespace(module_cls, "LightningModule")
    report_cls = ray_lightning(pl)[2]

    datamodule_args = args["datamodule"]
    if "batch_size" in datamodule_args:  # the sweep's batch size is global across workers
        datamodule_args["batch_size"] //= world_size
    # A logger or profiler given as an object is built as LightningCLI builds the Trainer's.
    trainer_args = {**TRAINER_DEFAULTS, **build_arguments(pl.Trainer, args["trainer"], pl)}
    if "precision" in trainer_args:
        trainer_args["precision"] = normalize_precision(trainer_args["precision"])
    wandb = loop_config.wandb
    if wandb and "logger" not in args["trainer"]:  # a logger the sweep file names wins
        names = spec.shown_keys  # a Hydra project's own names for its searched keys
        trainer_args["logger"] = wandb_logger(
            pl, wandb, {names.get(k, k): v for k, v in loop_config.config.items()})
    trainer_args.setdefault("default_root_dir", trial_dir)  # not the launch directory
    callbacks = build_callbacks(spec, pl, trial_dir)
    if spec.hydra_config:
        callbacks += build_hydra_callbacks(
            spec.hydra_trial(loop_config.config, trial_dir), pl, trial_dir)
    if any(isinstance(c, pl.callbacks.ModelCheckpoint) for c in callbacks):
        trainer_args["enable_checkpointing"] = True  # the user asked for Lightning's own
    if isinstance(trainer_args.get("profiler"), str):
        # A profiler named in the sweep file reports into the trial's directory, not the console.
        trainer_args["profiler"] = _profiler(pl, trainer_args["profiler"], trial_dir,
                                             session.world_rank)

    # The trial's own seed (tuning.config.seeding), else the sweep's (Ray's own OptunaSearch,
    # where lightsweep's searcher is off, proposes none).
    seed = loop_config.config.get(SEED_KEY, spec.search.seed)
    pl.seed_everything(seed, workers=True, verbose=False)
    # Objects in the arguments (a net, an optimizer callable) are built here, in every worker.
    datamodule = build(datamodule_cls, datamodule_args, pl)
    model = build(module_cls, args["module"], pl)
    apply_optimizer(model, args["optimizer"], args["lr_scheduler"], pl)
    # The run's own last checkpoint; failing that, under population-based training, the copy
    # of the donor's checkpoint the trial continues from (tuning.driver.pbt).
    checkpoint = session.checkpoint()
    start_from: str | None = loop_config.start_from
    inherited = checkpoint is None and start_from is not None
    if start_from is not None and inherited:
        checkpoint = session.checkpoint_class(start_from)
    # A trial trained longer, before its first new epoch: the epochs it had are the record's.
    continuing = 0 < loop_config.known_epoch <= loop_config.continued_from
    if spec.scheduler.name == "pbt":
        callbacks.append(explored_values_callback(pl)(apply=inherited))
    if spec.measured_metrics:  # model/params, model/latency_ms: objectives or constraints
        callbacks.append(model_cost_callback(pl)(spec.measured_metrics))
    trainer = pl.Trainer(
        max_epochs=spec.scheduler.max_epochs,
        accelerator=spec.accelerator,
        # The report last: it sends what the user's callbacks logged at the epoch's end too.
        # A donor's reports are its own: a run that starts from its checkpoint resends none.
        callbacks=[*callbacks, report_cls(session, known_epoch=loop_config.known_epoch,
                                          resend=not inherited and not continuing)],
        **_strategy_args(pl, session),
        **trainer_args,
    )
    if world_size > 1:
        trainer = prepare(trainer, pl)

    # A restarted or restored trial continues from its own last checkpoint.
    with checkpoint.as_directory() if checkpoint else nullcontext(None) as ckpt_dir:
        ckpt_path = Path(ckpt_dir, CHECKPOINT_NAME).as_posix() if ckpt_dir else None
        try:
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
        finally:
            if wandb:
                finish_wandb()
            session.close()  # what it held goes on once the W&B run is whole
