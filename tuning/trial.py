"""What runs for one trial: a Tune function that drives a Ray Train run of Lightning DDP workers.

Under Ray Train V2 a trainer cannot be handed to the Tuner; instead each Tune trial calls
:func:`run_trial`, which starts a ``TorchTrainer`` whose workers run :func:`train_worker`. Each
epoch, rank 0's metrics and checkpoint flow worker -> Train -> ``TuneReportCallback`` -> Tune,
where ASHA decides whether the trial goes on.
"""

from __future__ import annotations

import logging
import time
import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import Any, cast

import ray.train
import ray.train.v2._internal.execution.context as ray_train_context
from ray import tune
from ray.exceptions import OutOfMemoryError as RayOutOfMemoryError
from ray.train.torch import TorchTrainer
from ray.train.v2._internal.exceptions import (
    WorkerHealthCheckFailedError,
    WorkerHealthCheckTimeoutError,
)
from ray.train.v2.api.exceptions import TrainingFailedError
from ray.tune.integration.ray_train import CHECKPOINT_PATH_KEY, TuneReportCallback

from tuning.checks import normalize_precision
from tuning.errors import StorageFullError, is_storage_full
from tuning.layout import TRAIN_RUN_NAME, trial_path
from tuning.layout import trial_dirname as trial_dirname  # where older experiments' tuner.pkl finds it
from tuning.ledger import finished_trial
from tuning.lightning_compat import CHECKPOINT_NAME, prepare, ray_lightning
from tuning.location import Location
from tuning.spec import SweepSpec
from tuning.targets import lightning_namespace, resolve_class

logger = logging.getLogger(__name__)

# Defaults for the Lightning Trainer inside a trial; the sweep file's trainer_args win.
TRAINER_DEFAULTS: dict[str, Any] = {
    "logger": False,
    "enable_checkpointing": False,  # lightsweep's report callback checkpoints every epoch
    "enable_progress_bar": False,
    "enable_model_summary": False,
}


def _quiet_worker_logs() -> None:
    # Every worker of every trial would repeat Lightning's start-up banner and Ray's per-report
    # lines on the driver's console; warnings and errors still come through.
    for name in ("lightning.pytorch", "pytorch_lightning", "lightning.fabric", "lightning_fabric",
                 # Ray Train names this logger by file path, out of LoggingConfig's reach.
                 ray_train_context.__file__):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Lightning 2.6 on torch 2.14 warns about its own use of a torch internal, once per worker.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


def train_worker(loop_config: dict[str, Any]) -> None:
    """One Ray Train worker: builds the user's DataModule, LightningModule and a DDP Trainer."""
    spec = SweepSpec.model_validate(loop_config["spec"])
    args = spec.trial_args(loop_config["config"])
    module_cls = resolve_class(spec.module, "module")
    datamodule_cls = resolve_class(spec.datamodule, "datamodule")
    _quiet_worker_logs()  # after the user's imports, which may set Lightning's log levels
    pl = lightning_namespace(module_cls, "LightningModule")
    strategy_cls, environment_cls, report_cls = ray_lightning(pl)

    datamodule_args = args["datamodule"]
    if "batch_size" in datamodule_args:  # the sweep's batch size is global across workers
        datamodule_args["batch_size"] //= ray.train.get_context().get_world_size()
    trainer_args = {**TRAINER_DEFAULTS, **args["trainer"]}
    if "precision" in trainer_args:
        trainer_args["precision"] = normalize_precision(trainer_args["precision"])

    pl.seed_everything(spec.search.seed, workers=True, verbose=False)
    datamodule = datamodule_cls(**datamodule_args)
    model = module_cls(**args["module"])
    trainer = pl.Trainer(
        max_epochs=spec.scheduler.max_epochs,
        accelerator=spec.accelerator,
        devices="auto",
        strategy=strategy_cls(),
        plugins=[environment_cls()],
        callbacks=[report_cls(), *trainer_args.pop("callbacks", [])],
        **trainer_args,
    )
    trainer = prepare(trainer, pl)

    # A restarted or restored trial continues from its own last checkpoint.
    checkpoint = ray.train.get_checkpoint()
    with checkpoint.as_directory() if checkpoint else nullcontext(None) as ckpt_dir:
        ckpt_path = Path(ckpt_dir, CHECKPOINT_NAME).as_posix() if ckpt_dir else None
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)


def _worker_deaths(error: TrainingFailedError) -> list[BaseException]:
    """Why each worker of a failed Train run that died (process killed, node lost) died.

    Exceptions raised by user code arrive wrapped as UserExceptionWithTraceback on every rank
    that raised; a rank whose process died fails its health check instead, carrying the cause
    (Ray's ``ActorDiedError``, or ``OutOfMemoryError`` when its memory monitor killed it).
    """
    failures = getattr(error, "worker_failures", None) or {}
    return [
        e.health_check_failure if isinstance(e, WorkerHealthCheckFailedError) else e
        for e in failures.values()
        if isinstance(e, WorkerHealthCheckFailedError | WorkerHealthCheckTimeoutError)
    ]


def _retry_reason(error: TrainingFailedError) -> str | None:
    """Why the run is worth starting again, or None if it is not.

    When one rank dies the others often fail too (collective errors), so one death is enough to
    call it a death. A worker that Ray's memory monitor killed would be killed again: the trial
    fails with that OutOfMemoryError, and the searcher learns to avoid its configuration.
    """
    deaths = _worker_deaths(error)
    if not deaths or any(isinstance(d, RayOutOfMemoryError) for d in deaths):
        return None
    return type(deaths[0]).__name__


def _wait_for_reports(report_callback: TuneReportCallback, timeout_s: float = 30.0) -> None:
    # The callback hands each report to Tune through a one-item queue. Returning while the last
    # report still sits there ends the trial without it: wait until Tune has taken it.
    reports = report_callback._training_actor_item_queue
    deadline = time.monotonic() + timeout_s
    while not reports.empty() and time.monotonic() < deadline:
        time.sleep(0.05)


def run_trial(config: dict[str, Any], spec_data: dict[str, Any], experiment_path: str) -> None:
    """The Tune function trainable: runs one configuration as a Ray Train run.

    A worker that dies (process killed, node lost) costs at most the epoch in progress: the run
    is started again, up to ``failures.max_retries`` times, and resumes from its last checkpoint.
    An exception raised by the user's code, or a worker killed by Ray's memory monitor, fails
    the trial at once: either would happen again.

    Args:
        config: The searched values for this trial, by full key (``"module.lr"``).
        spec_data: The sweep (``SweepSpec.model_dump()``).
        experiment_path: The sweep's experiment directory (local path or URI).
    """
    spec = SweepSpec.model_validate(spec_data)
    res = spec.resources
    trial_id = tune.get_context().get_trial_id()
    experiment = Location.parse(experiment_path)
    finished = finished_trial(experiment, trial_id, config)
    if finished is not None and finished.history:
        # Tune restarts, on resume, a trial that finished after its last experiment checkpoint,
        # or proposes again the configuration of one it never saved; the leaderboard knows it
        # finished. Hand Tune its last result instead of training again.
        last = max(finished.history, key=lambda e: e.epoch)
        result: dict[str, Any] = {**last.metrics, "epoch": last.epoch}
        if last.checkpoint:
            result[CHECKPOINT_PATH_KEY] = Location.parse(last.checkpoint).parent.uri
        tune.report(result)
        return
    per_worker = {"CPU": res.cpus_per_worker}
    if res.gpus_per_worker:
        per_worker["GPU"] = res.gpus_per_worker
    for attempt in range(spec.failures.max_retries + 1):
        report_callback = TuneReportCallback()
        trainer = TorchTrainer(
            train_worker,
            train_loop_config={"spec": spec_data, "config": config},
            scaling_config=ray.train.ScalingConfig(
                num_workers=res.workers_per_trial,
                use_gpu=res.gpus_per_worker > 0,
                resources_per_worker=per_worker,
                placement_strategy=res.placement,
            ),
            # ray.train exports Train V2's RunConfig at run time; type checkers see V1's.
            run_config=ray.train.RunConfig(  # type: ignore[call-arg]
                # A stable name under the trial's own directory: a restarted attempt or trial
                # finds its checkpoints there through ray.train.get_checkpoint().
                name=TRAIN_RUN_NAME,
                storage_path=trial_path(experiment, trial_id).uri,
                callbacks=[cast(Any, report_callback)],  # a Train V2 UserCallback
                # Retries are decided here, where a user's exception is told from a death.
                failure_config=ray.train.FailureConfig(max_failures=0),
                # Per-report INFO lines from every worker would drown the sweep's own progress;
                # Ray's session log files still record them.
                logging_config=ray.train.LoggingConfig(log_level="WARNING"),
                checkpoint_config=ray.train.CheckpointConfig(
                    num_to_keep=spec.checkpoints.num_to_keep,
                    checkpoint_score_attribute=spec.metric,
                    checkpoint_score_order=spec.mode,
                ),
            ),
        )
        try:
            trainer.fit()
        except TrainingFailedError as error:
            if is_storage_full(error):
                # The Tune driver stops the sweep on this error; `resume` continues the trial.
                raise StorageFullError(experiment_path) from error
            reason = _retry_reason(error)
            if reason is None or attempt == spec.failures.max_retries:
                raise
            logger.warning(
                "trial %s: a worker died (%s); restarting from the last checkpoint, retry %d of %d",
                trial_id, reason, attempt + 1, spec.failures.max_retries,
            )
        else:
            _wait_for_reports(report_callback)
            return
