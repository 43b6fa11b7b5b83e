"""What runs for one trial: a Tune function that drives a Ray Train run of Lightning DDP workers
(or, with ``resources.trial_runner: inline``, fits in Tune's trial process itself).

Under Ray Train V2 a trainer cannot be handed to the Tuner; instead each Tune trial calls
:func:`run_trial`, which starts a ``TorchTrainer`` whose workers run :mod:`tuning.trial.worker`. Each
epoch, rank 0's metrics and checkpoint flow worker -> Train -> ``ReportToTune`` -> Tune,
where ASHA decides whether the trial goes on. Inline, the same worker code reports to Tune
directly (:mod:`tuning.trial.session`).
"""

from __future__ import annotations

import logging
from typing import Any, cast

import ray.train
from ray import tune
from ray.exceptions import ActorDiedError, ActorUnavailableError, NodeDiedError, WorkerCrashedError
from ray.exceptions import OutOfMemoryError as RayOutOfMemoryError
from ray.train.v2.api.exceptions import TrainingFailedError
from ray.tune.integration.ray_train import CHECKPOINT_PATH_KEY
from typing_extensions import override

from tuning._internals.failures import worker_deaths
from tuning._internals.trainer import ReportToTune, trainer_class
from tuning.config.spec import SweepSpec
from tuning.contracts import CONTINUES_KEY, GENERATION_METRIC, LoopConfig
from tuning.errors import (
    RepeatedUserError,
    StorageFullError,
    causes,
    describe_error,
    is_infrastructure_error,
    is_storage_full,
)
from tuning.record import finished_trial, last_checkpoint, recorded_epochs
from tuning.record.layout import (
    TRAIN_RUN_NAME,
    USER_ERROR_FILE,
    begin_generation,
    keep_whole_snapshot,
    repair_train_snapshot,
    trial_path,
)
from tuning.record.lineage import Exploit
from tuning.record.location import Location
from tuning.trial.tracking import wandb_run
from tuning.trial.warm_pool import StartWorkersAhead, WarmPool

logger = logging.getLogger(__name__)


def train_worker(loop_config: dict[str, Any]) -> None:
    """Runs :func:`tuning.trial.worker.train_worker` on a Train worker (imported there, not here)."""
    from tuning.trial.worker import train_worker as fit

    fit(loop_config)


class SnapshotKeeper(ray.train.UserCallback):
    """Keeps a whole copy of the run's checkpoint list after each report, on the Train
    controller, where Ray Train has just rewritten it (:func:`tuning.record.layout.keep_whole_snapshot`).
    """

    def __init__(self, experiment: Location, trial_id: str) -> None:
        self.experiment = experiment
        self.trial_id = trial_id

    @override
    def after_report(self, run_context: Any, metrics: list[dict[str, Any]],
                     checkpoint: ray.train.Checkpoint | None) -> None:
        if checkpoint is not None:
            keep_whole_snapshot(self.experiment, self.trial_id)


class LineageReportCallback(ReportToTune):
    """Ray's report to Tune, with the trial's exploit generation (population-based training)
    in each result, so the searcher can tell results of the values it proposed from later ones."""

    def __init__(self, generation: int) -> None:
        super().__init__()
        self.generation = generation

    @override
    def after_report(self, run_context: Any, metrics: list[dict[str, Any]],
                     checkpoint: ray.train.Checkpoint | None) -> None:
        metrics = [{**metrics[0], GENERATION_METRIC: self.generation}, *metrics[1:]]
        super().after_report(run_context, metrics, checkpoint)


# Ray's errors for a process (or its node) that died, whatever the code it ran.
PROCESS_DEATHS = (ActorDiedError, ActorUnavailableError, NodeDiedError, WorkerCrashedError)


def _retry_reason(error: TrainingFailedError) -> str | None:
    """Why the run is worth starting again, or None if it is not.

    When one rank dies the others often fail too (collective errors), so one death is enough to
    call it a death. A worker that Ray's memory monitor killed would be killed again: the trial
    fails with that OutOfMemoryError, and the searcher learns to avoid its configuration.
    """
    died = (*PROCESS_DEATHS, RayOutOfMemoryError)
    failures = list((getattr(error, "worker_failures", None) or {}).values())
    # A worker that died while the run's controller waited on it (starting it, polling it)
    # arrives as the actor's death itself, not as a failed health check: listed as its rank's
    # failure, or, with no rank's listed, as the run's cause.
    deaths = [*worker_deaths(error), *(f for f in failures if isinstance(f, died))]
    if not deaths and not failures:
        deaths = [e for e in causes(error) if isinstance(e, died)]
    if not deaths or any(isinstance(d, RayOutOfMemoryError) for d in deaths):
        return None
    return type(deaths[0]).__name__


def _quiet_train_logs() -> dict[str, Any]:
    """``RunConfig(logging_config=...)`` at WARNING, where Train has it (Ray 2.56+): per-report
    INFO lines from every worker would drown the sweep's own progress (Ray's session log files
    still record them). The workers also quiet Train's loggers themselves (tuning.trial.worker)."""
    logging_config = getattr(ray.train, "LoggingConfig", None)
    if logging_config is None:  # this process's loggers (Train's controller runs here)
        logging.getLogger("ray.train").setLevel(logging.WARNING)
        return {}
    return {"logging_config": logging_config(log_level="WARNING")}


def run_trial(config: dict[str, Any], spec: SweepSpec, experiment_path: str,
              wandb_mode: str = "offline", local: bool = False) -> None:
    """The Tune function trainable: runs one configuration as a Ray Train run.

    A worker that dies (process killed, node lost) costs at most the epoch in progress: the run
    is started again, up to ``failures.max_retries`` times, and resumes from its last checkpoint.
    An exception raised by the user's code, or a worker killed by Ray's memory monitor, fails
    the trial at once: either would happen again.

    Args:
        config: The searched values for this trial, by full key (``"module.lr"``).
        spec: The sweep, as the driver validated it (pickled: its parsed space and all).
        experiment_path: The sweep's experiment directory (local path or URI).
        wandb_mode: The W&B mode of the trial's run (:func:`tuning.trial.tracking.wandb_mode`).
        local: Whether the trial runs on the machine the sweep was launched from (its code then
            runs in the launch directory, :func:`tuning.trial.worker.run_in_launch_directory`).
    """
    # A trial trained longer (resume --max-epochs) carries an earlier trial's record on: its id
    # names the trial's directory, its Train run (whose checkpoints it goes on from) and W&B run.
    continues = config.get(CONTINUES_KEY)
    trial_id = continues["trial"] if continues else tune.get_context().get_trial_id()
    experiment = Location.parse(experiment_path)
    finished = None if continues else finished_trial(experiment, trial_id, config)
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
    exploit = Exploit.of(config)
    if exploit is not None and begin_generation(experiment, trial_id, exploit.generation):
        logger.info("trial %s: starting from trial %s's epoch %d", trial_id, exploit.donor,
                    exploit.epoch)
    start_from = exploit.checkpoint if exploit else None
    if continues:  # where its own run has no checkpoint (inline: Tune's trial is new)
        start_from = last_checkpoint(experiment, trial_id)
    loop_config = LoopConfig(
        spec=spec, config=config, local=local,
        wandb=wandb_run(spec, experiment, trial_id, wandb_mode),
        trial_dir=trial_path(experiment, trial_id).uri if experiment.is_local else None,
        start_from=start_from, continued_from=continues["from_epoch"] if continues else 0)
    if spec.resources.trial_runner == "inline":
        loop_config = loop_config.but(known_epoch=recorded_epochs(experiment, trial_id))
        _fit_inline(loop_config, experiment, trial_id)
    else:
        _fit_in_train_run(spec, loop_config, experiment, trial_id, exploit)


def _fail_if_it_raised_before(experiment: Location, trial_id: str) -> Location:
    """Tune retries a trial whose process died (``failures.max_retries``) from its last
    checkpoint, but it cannot tell a death from an exception of the user's code, which would
    only happen again: a trial whose code raised leaves a note (at the path returned), and its
    retries fail at once with it.

    Raises:
        RepeatedUserError: If the trial's code raised in an earlier attempt.
    """
    note = trial_path(experiment, trial_id) / USER_ERROR_FILE
    if note.exists():  # before the imports: a retry's new process fails without importing torch
        raise RepeatedUserError(trial_id, note.read_text())
    return note


def _fit_inline(loop_config: LoopConfig, experiment: Location, trial_id: str) -> None:
    """Fits in this process (``trial_runner: inline``), reporting to Tune directly; a retry
    after the user's code raised fails at once (:func:`_fail_if_it_raised_before`), one after
    the infrastructure failed (an OS error outside the user's code) runs again."""
    note = _fail_if_it_raised_before(experiment, trial_id)
    # Imported here: a reused trial process imports torch and Lightning once, for all its trials.
    from tuning.trial.session import TuneSession
    from tuning.trial.worker import train_worker as fit

    session = TuneSession()
    try:
        fit(loop_config, session)
    except Exception as error:
        if is_storage_full(error):
            raise StorageFullError(str(experiment)) from error
        if is_infrastructure_error(error):
            raise  # Tune retries the trial from its last checkpoint (failures.max_retries)
        # The user's code raised: noted, so that a retry fails at once with it.
        note.write_text(f"{type(error).__name__}: {error}")
        raise
    if session.stop_requested:
        # Tune stopped the trial during a report; the fit ended that epoch whole (its W&B
        # row and run finished). The function ends as Tune ends a stopped one.
        raise SystemExit(0)


def _fit_in_train_run(spec: SweepSpec, loop_config: LoopConfig, experiment: Location,
                      trial_id: str, exploit: Exploit | None) -> None:
    """Fits as a Ray Train run of ``resources.workers_per_trial`` workers, retrying it from its
    last checkpoint when a worker dies (``failures.max_retries``). Tune retries the trial when
    its own process dies; an exception of the user's code is noted, so that such a retry fails
    at once (:func:`_fail_if_it_raised_before`)."""
    note = _fail_if_it_raised_before(experiment, trial_id)
    repaired = repair_train_snapshot(experiment, trial_id)
    if repaired:
        logger.warning("trial %s: %s", trial_id, repaired)
    res = spec.resources
    per_worker = {"CPU": res.cpus_per_worker}
    if res.gpus_per_worker:
        per_worker["GPU"] = res.gpus_per_worker
    pool = WarmPool.for_spec(spec)
    for attempt in range(spec.failures.max_retries + 1):
        warm = pool.before_run()
        report_callback = (LineageReportCallback(exploit.generation) if exploit
                           else ReportToTune())
        trainer = trainer_class()(
            train_worker,
            # What the sweep recorded before this attempt: a retry sends again only the rest.
            train_loop_config=loop_config.but(
                warm=warm, known_epoch=recorded_epochs(experiment, trial_id)).for_train(),
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
                # Workers that import the fit's modules as they start; any env, where the pool is off.
                worker_runtime_env=pool.worker_runtime_env() if warm else {},
                # Train V2 UserCallbacks; type checkers see V1's callback type.
                # The pool's first: Tune's report ends the trial's function when Tune stops it.
                callbacks=cast(Any, [StartWorkersAhead(pool), report_callback,
                                     SnapshotKeeper(experiment, trial_id)]),
                # Retries are decided here, where a user's exception is told from a death.
                failure_config=ray.train.FailureConfig(max_failures=0),
                **_quiet_train_logs(),
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
                raise StorageFullError(str(experiment)) from error
            reason = _retry_reason(error)
            if reason is None:
                note.write_text(describe_error(error))
                raise
            if attempt == spec.failures.max_retries:
                raise
            logger.warning(
                "trial %s: a worker died (%s); restarting from the last checkpoint, retry %d of %d",
                trial_id, reason, attempt + 1, spec.failures.max_retries,
            )
        else:
            report_callback.wait_until_taken()
            return
