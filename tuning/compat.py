"""Every private part of Ray, Lightning, Optuna and W&B that lightsweep relies on, in one place.

Each entry says why lightsweep needs it and the public way it waits for. The rest of the package
uses only this module and public APIs, so a release that moves one of these breaks here, named,
and `launch` warns first when Ray, Lightning or Optuna is outside the tested ranges
(:mod:`tuning.driver.versions`). Nothing here imports Lightning: trial drivers import this module.
Two exceptions, for modules that Ray processes import and that must import nothing heavy: the
names of Train's private loggers live in :mod:`tuning.trial.ray_logs`, which every Ray process runs,
and Train's synchronization actor is extended in :mod:`tuning.trial.sync_actor`, which that
actor's process imports.
"""

from __future__ import annotations

import asyncio
import fnmatch
import inspect
import json
import os
import random
import time
from dataclasses import dataclass
from typing import Any

import ray
import ray.train.v2._internal.execution.context as _train_context
from ray import tune
from ray.exceptions import RayActorError
from ray.train.backend import Backend, BackendConfig
from ray.train.v2._internal.callbacks.datasets import DatasetsCallback
from ray.train.v2._internal.callbacks.placement_group_callback import (
    PlacementGroupCleanerCallback,
)
from ray.train.v2._internal.constants import GET_ACTOR_TIMEOUT_S
from ray.train.v2._internal.exceptions import (
    WorkerHealthCheckFailedError,
    WorkerHealthCheckTimeoutError,
)
from ray.train.v2._internal.execution.scaling_policy.fixed import FixedScalingPolicy
from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer
from ray.tune.integration.ray_train import CHECKPOINT_PATH_KEY, TuneReportCallback
from ray.tune.schedulers import PopulationBasedTraining
from ray.tune.schedulers.pbt import _make_experiment_tag, _PBTTrialState
from ray.tune.search.optuna import OptunaSearch
from typing_extensions import override

# --- Ray Train V2 ---------------------------------------------------------------------------


class _TorchDeviceContext:
    """Ray's ``TorchConfigContextManager`` (each worker's CUDA device), imported where it runs."""

    def __enter__(self) -> None:
        from ray.train.torch.config import TorchConfigContextManager

        self._inner = TorchConfigContextManager()
        self._inner.__enter__()

    def __exit__(self, *exc: object) -> bool:
        return bool(self._inner.__exit__(*exc))


class _TorchBackendWhereItRuns(Backend):
    """Ray's ``_TorchBackend`` (the process group of a run's workers), imported where it runs:
    in Train's controller, which calls it, not in the trial's driver, which only builds it."""

    share_cuda_visible_devices: bool = True  # as _TorchBackend: DDP ranks of a node see each GPU

    @staticmethod
    def _torch(backend_config: BackendConfig) -> tuple[Backend, BackendConfig]:
        from ray.train.torch.config import TorchConfig, _TorchBackend

        assert isinstance(backend_config, LazyTorchConfig)
        return _TorchBackend(), TorchConfig(backend=backend_config.backend,
                                            init_method=backend_config.init_method,
                                            timeout_s=backend_config.timeout_s)

    # A run of one worker trains on its device without DDP (tuning.trial.worker): it gets no
    # process group, whose set-up would cost it a rendezvous and the controller an import of
    # torch, for collectives that have no one to talk to.
    @staticmethod
    def _delegate(hook: str, worker_group: Any, backend_config: BackendConfig) -> None:
        if len(worker_group) > 1:
            backend, config = _TorchBackendWhereItRuns._torch(backend_config)
            getattr(backend, hook)(worker_group, config)

    @override
    def on_start(self, worker_group: Any, backend_config: BackendConfig) -> None:
        self._delegate("on_start", worker_group, backend_config)

    @override
    def on_shutdown(self, worker_group: Any, backend_config: BackendConfig) -> None:
        self._delegate("on_shutdown", worker_group, backend_config)

    @override
    def on_training_start(self, worker_group: Any, backend_config: BackendConfig) -> None:
        self._delegate("on_training_start", worker_group, backend_config)


@dataclass
class LazyTorchConfig(BackendConfig):
    """Ray's ``TorchConfig``, without importing torch in the process that builds the trainer.

    ``ray.train.torch`` imports torch (444 MB of a process's memory against 131 MB, and a second
    of CPU) at module level. Building the trainer needs none of it; setting up the workers'
    process group does, and imports it then, wherever the controller runs (in the trial's own
    process, :meth:`TorchTrainerWithoutDatasets._initialize_and_run_controller`). A run of one
    worker gets no process group (:class:`_TorchBackendWhereItRuns`), so a one-worker trial's
    process never imports torch.
    Private: ``_TorchBackend``, ``TorchConfigContextManager``, ``TrainingFramework``. Public way:
    none (``TorchConfig`` is the only torch backend and imports torch at module level).
    """

    backend: str | None = None
    init_method: str = "env"
    timeout_s: int = 1800

    @property
    def backend_cls(self) -> type[Backend]:
        return _TorchBackendWhereItRuns

    @property
    def train_func_context(self) -> type[_TorchDeviceContext]:
        return _TorchDeviceContext

    @property
    def framework(self) -> Any:
        from ray.train.v2._internal.util import TrainingFramework

        return TrainingFramework.TORCH

    @override
    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "init_method": self.init_method,
                "timeout_s": self.timeout_s}


class TorchTrainerWithoutDatasets(DataParallelTrainer):
    """Ray's ``TorchTrainer`` that starts no ``DatasetManager`` actor when it has no datasets,
    and imports no torch where it is built (:class:`LazyTorchConfig`).

    Train starts a dataset manager for every run, datasets or not: one more Ray process to start,
    import and stop per trial, for nothing (lightsweep's trials load their data in the
    DataModule). Private: ``_create_default_callbacks``. Public way: none yet (Train has no
    option for it).
    """

    def __init__(self, train_loop_per_worker: Any, *, scaling_config: Any, **kwargs: Any) -> None:
        # TorchTrainer's own default: NCCL between GPUs, gloo between CPUs.
        backend = "nccl" if scaling_config.use_gpu else "gloo"
        super().__init__(train_loop_per_worker, backend_config=LazyTorchConfig(backend=backend),
                         scaling_config=scaling_config, **kwargs)

    # Where the last fit ran Train's controller: "trial" (this process) or "actor" (Ray's own).
    controller_ran_in: str | None = None
    # Who removes the run's placement group should the process running its controller die:
    # "driver" (the sweep's, :func:`actors_placement_groups`), "cleaner per process"
    # (:class:`CleanerPerProcess`) or "cleaner per run" (Ray's own).
    placement_groups_removed_by: str | None = None
    # Whether the last fit's run met at a synchronization actor of this process ("process",
    # :func:`_reuse_synchronization_actor`) or one of its own, as Train starts it ("run").
    synchronization_actor_per: str | None = None

    @override
    def _create_default_callbacks(self) -> list[Any]:
        callbacks: list[Any] = super()._create_default_callbacks()
        if os.environ.get(PLACEMENT_GROUPS_ENV) == "driver":
            self.placement_groups_removed_by = "driver"
            callbacks = [c for c in callbacks if type(c) is not PlacementGroupCleanerCallback]
        elif _train_controller_class() is not None:  # the controller runs in the trial's process
            self.placement_groups_removed_by = "cleaner per process"
            callbacks = [CleanerPerProcess() if type(c) is PlacementGroupCleanerCallback else c
                         for c in callbacks]
        else:
            self.placement_groups_removed_by = "cleaner per run"
        if self.datasets:
            return callbacks
        return [c for c in callbacks if not isinstance(c, DatasetsCallback)]

    @override
    def _initialize_and_run_controller(self, **controller_init_kwargs: Any) -> Any:
        """Runs Train's controller in the trial's own process instead of an actor of its own.

        Ray starts a controller actor per run: one more process per trial to start, import Ray
        and torch in, and hold (0.43 GB measured). Here the trial's process, which only waited
        for it, runs its control loop. A placement group outlives the process that made it
        (measured on Ray 2.60): should the trial's process die in mid-run, the sweep's driver
        removes the run's group (:func:`actors_placement_groups`), or else Train's cleaner, one
        per process (:class:`CleanerPerProcess`). Private: ``TrainController`` and this method.
        Public way: none; if Ray moves either, the run goes through Train's own controller actor.
        """
        policy = controller_init_kwargs.get("scaling_policy")
        if type(policy) is FixedScalingPolicy and os.environ.get(AUTOSCALER_REQUESTS_ENV) == "0":
            controller_init_kwargs["scaling_policy"] = FixedScalingWithoutAutoscaler(
                policy.scaling_config)
        controller_cls = _train_controller_class()
        if controller_cls is None:
            self.controller_ran_in = "actor"
            return super()._initialize_and_run_controller(**controller_init_kwargs)
        self.controller_ran_in = "trial"
        self.synchronization_actor_per = "process" if _reuse_synchronization_actor() else "run"
        controller = controller_cls(**controller_init_kwargs)
        try:
            # Tune runs a trial's function in a thread of its own: no event loop runs there yet.
            asyncio.run(controller.run())
        except SystemExit:
            # Tune stopped the trial: its report (ReportToTune, in this thread) ends the trial's
            # function so. End the run here, so that its workers and placement group are gone
            # before Tune hands this process to the next trial (reuse_actors).
            _abort_in_place(controller)
            raise
        return controller.get_result()


class _ReusedSynchronizationActor:
    """Stands in for Train's ``SynchronizationActor`` class where a run's worker group starts
    it: the first run of this process starts a :class:`RenewableSynchronizationActor`, each
    later one renews it (a fresh barrier) instead of starting a process."""

    def __init__(self) -> None:
        self.handle: Any = None
        self._options: dict[str, Any] = {}

    def options(self, **options: Any) -> _ReusedSynchronizationActor:
        self._options = options  # Train's: on this process's node
        return self

    def remote(self, *, timeout_s: float | None, warn_interval_s: float) -> Any:
        from tuning.trial.sync_actor import RenewableSynchronizationActor

        if self.handle is not None:
            try:
                ray.get(self.handle.renew.remote(timeout_s, warn_interval_s))
                return self.handle
            except RayActorError:
                self.handle = None  # died (killed by hand, say): start another
        self.handle = RenewableSynchronizationActor.options(**self._options).remote(
            timeout_s=timeout_s, warn_interval_s=warn_interval_s)
        return self.handle


_REUSED_SYNCHRONIZATION_ACTOR = _ReusedSynchronizationActor()


def _reuse_synchronization_actor() -> bool:
    """Makes the Train runs of this process meet at one synchronization actor, kept between
    runs; False (each run starts and kills its own, as Ray does) where this Ray starts or stops
    it otherwise.

    A trial's process runs one Train run at a time (Train's controller runs in it,
    :meth:`TorchTrainerWithoutDatasets._initialize_and_run_controller`), and Tune reuses it for
    the next trial: one actor serves them all, where Train starts a process per run.
    Private: the worker-group module's ``SynchronizationActor`` and the worker-group state's
    ``_shutdown_sync_actor``, replaced in this process. Public way: none.
    """
    from ray.train.v2._internal.execution.worker_group import state, worker_group

    ray_class = getattr(worker_group, "SynchronizationActor", None)
    if ray_class is _REUSED_SYNCHRONIZATION_ACTOR:
        return True
    shutdown = getattr(state, "_shutdown_sync_actor", None)
    if shutdown is None or not hasattr(ray_class, "__ray_actor_class__"):
        return False

    def keep_the_reused_one(sync_actor: Any) -> None:
        if sync_actor is not _REUSED_SYNCHRONIZATION_ACTOR.handle:
            shutdown(sync_actor)

    state._shutdown_sync_actor = keep_the_reused_one
    setattr(worker_group, "SynchronizationActor", _REUSED_SYNCHRONIZATION_ACTOR)  # noqa: B010
    return True


# "0": Train asks no autoscaler for its runs' workers (lightsweep sets it for a local Ray).
AUTOSCALER_REQUESTS_ENV = "LIGHTSWEEP_AUTOSCALER_REQUESTS"


class FixedScalingWithoutAutoscaler(FixedScalingPolicy):
    """Train's fixed scaling policy, without its requests to Ray's autoscaler.

    Train tells the autoscaler what each run's workers need through a cluster-wide coordinator
    actor, a process of its own that holds 0.12 GB (bench/: peak PSS by process). A local Ray
    has no autoscaler, so lightsweep sets :data:`AUTOSCALER_REQUESTS_ENV` to "0" there and
    the coordinator is never started; on a cluster the requests go on as Ray sends them.
    Private: the policy's hooks. Public way: none (Train has no option for it).
    """

    @override
    def after_controller_start(self, train_run_context: Any) -> None:
        pass  # Ray's starts the coordinator's client and sends the first request

    @override
    def _maybe_send_resource_request(self) -> None:
        pass

    @override
    def _send_resource_request(self) -> None:
        pass


# "driver": the sweep's driver removes the placement group of a Train run whose process died
# (:func:`actors_placement_groups`), so Train starts no cleaner of its own.
PLACEMENT_GROUPS_ENV = "LIGHTSWEEP_PLACEMENT_GROUPS"


def can_list_actors_placement_groups(address: str | None) -> bool:
    """Whether :func:`actors_placement_groups` works with this Ray and a driver that joins
    ``address`` (None: a local Ray). A Ray Client driver (``ray://``) has no GCS connection of
    its own."""
    fields = _placement_group_record().DESCRIPTOR.fields_by_name
    accessor = getattr(ray._raylet, "GlobalStateAccessor", None)
    return (not (address or "").startswith("ray://")
            and {"creator_actor_id", "creator_actor_dead", "creator_job_id", "state"} <= set(fields)
            and hasattr(accessor, "get_placement_group_table"))


def _placement_group_record() -> Any:
    """The GCS's protobuf message of a placement group (generated code: no type stubs)."""
    from ray.core.generated import gcs_pb2

    return gcs_pb2.PlacementGroupTableData  # type: ignore[attr-defined]


def actors_placement_groups() -> list[tuple[Any, bool]]:
    """The placement groups, not yet removed, that actors of this job made: each with whether
    its maker has died.

    Ray removes a placement group that an actor made only once both the actor and its job have
    ended (measured on Ray 2.60: a killed trial process's group holds its CPUs until the sweep
    ends). A Train run's group is made by Train's controller, which lightsweep runs in the
    trial's process; Ray's answer is a cleaner per run, a detached actor (a process) that asks
    the dashboard's State API each second whether the controller lives. The sweep's driver
    reads the same fact from the GCS instead: no process, no dashboard. Private: the GCS
    accessor of ``ray._private.state`` and the creator fields of its placement-group records.
    Public way: none (``ray.util.placement_group_table`` leaves the maker out; the State API
    needs the dashboard).
    """
    from ray._private.state import state
    from ray.util.placement_group import PlacementGroup

    job = bytes.fromhex(ray.get_runtime_context().get_job_id())
    table = _placement_group_record()
    accessor: Any = state._global_state_accessor  # None until ray.init
    found = []
    for raw in accessor.get_placement_group_table():
        group = table.FromString(raw)
        if (group.creator_job_id == job and not group.is_detached
                and not ray.ActorID(group.creator_actor_id).is_nil()
                and group.state != table.REMOVED):
            found.append((PlacementGroup(ray.PlacementGroupID(group.placement_group_id)),
                          group.creator_actor_dead))
    return found


class CleanerPerProcess(PlacementGroupCleanerCallback):
    """Train's placement-group cleaner, one per trial process instead of one per Train run.

    Train starts a cleaner (a detached actor: a process) for every run, to remove the run's
    placement group should the process running its controller die, and stops it when the run
    ends. Here the controller runs in the trial's process (:class:`TorchTrainerWithoutDatasets`),
    which Tune reuses from trial to trial, and the cleaner watches that process, taking each new
    placement group as it comes (it was made for a controller that remakes its worker group). So
    one cleaner serves every run of the process: a process start less per trial. It ends when
    the process does, after removing the last run's placement group if that is still there
    (a run that ended removed its own). Private: Train's cleaner callback and its hooks. Public
    way: none; if Ray moves them, each run gets Ray's own cleaner.

    Attributes:
        started: Cleaners this process started (one, however many runs it held).
    """

    # This process's cleaner: (the actor id of the process it watches, the cleaner's handle).
    _of_process: tuple[str, Any] | None = None
    started = 0

    @override
    def after_controller_start(self, train_run_context: Any) -> None:
        watched = ray.get_runtime_context().get_actor_id()
        kept = CleanerPerProcess._of_process
        if kept is not None and kept[0] == watched:
            try:  # still there (nothing else stops it; its node may have gone)
                ray.get(kept[1].start_monitoring.remote(), timeout=GET_ACTOR_TIMEOUT_S)
                self._controller_actor_id, self._cleaner = kept
                return
            except (RayActorError, ray.exceptions.GetTimeoutError):
                CleanerPerProcess._of_process = None
        super().after_controller_start(train_run_context)
        if self._cleaner is not None and self._controller_actor_id is not None:
            CleanerPerProcess._of_process = (self._controller_actor_id, self._cleaner)
            CleanerPerProcess.started += 1

    @override
    async def before_controller_shutdown(self) -> None:
        pass  # kept for this process's next run; the run removes its own placement group

    @override
    def before_controller_abort(self) -> None:
        pass  # kept: it removes the placement group should this process die before the abort


def _abort_in_place(controller: Any) -> None:
    """``TrainController.abort()`` but for its last step, ``ray.actor.exit_actor()``: the process
    is the trial's, which Tune reuses. Kills the run's workers and removes their placement group
    (the process's cleaner, :class:`CleanerPerProcess`, where there is one, stays for its next
    run). Private: the controller's callback manager and state. Public way: none (``abort``
    assumes the controller is an actor of its own).

    The workers go first, then the abort hooks (Ray's abort does the reverse): Tune may end this
    process at any moment once it asked the trial to stop, and until the placement group is
    gone only the sweep's driver (or the cleaner), which outlives this process, would free its
    resources.
    """
    from ray.train.v2._internal.execution.controller.state import AbortedState

    if controller.get_state().is_terminal():
        return
    worker_group = controller.get_worker_group()
    if worker_group is not None:
        worker_group.abort()
    controller._controller_callback_manager.invoke_best_effort("before_controller_abort")
    controller._set_state(AbortedState())


class ReportToTune(TuneReportCallback):
    """Ray's report of a Train run to Tune (rank 0's metrics, the checkpoint's path), handed to
    Tune in the trial's own thread where Train's controller runs there
    (:class:`TorchTrainerWithoutDatasets`), else through Ray's queue actor.

    In the trial's thread, ``tune.report`` returns once Tune has taken the report, and ends the
    thread when Tune stopped the trial: the run then ends at once, and the process can go on to
    another trial. Ray's callback instead puts each report in a one-item queue actor (a process
    per trial), which a stopped trial's controller would wait on forever.
    """

    def __init__(self) -> None:
        self.direct = _train_controller_class() is not None
        if not self.direct:
            super().__init__()  # type: ignore[no-untyped-call]  # the queue actor

    @override
    def after_report(self, run_context: Any, metrics: list[dict[str, Any]],
                     checkpoint: Any | None) -> None:
        if not self.direct:
            super().after_report(run_context, metrics, checkpoint)
            return
        result = metrics[0].copy()
        if checkpoint:
            result[CHECKPOINT_PATH_KEY] = checkpoint.path  # persisted by Train already
        tune.report(result)

    def wait_until_taken(self, timeout_s: float = 30.0) -> None:
        """Waits until Tune has taken the last report (a trial function that returns before
        ends the trial without it). Private, through the queue: ``_training_actor_item_queue``.
        Public way: none (the callback has no flush)."""
        if self.direct:
            return  # taken as it was made
        reports = self._training_actor_item_queue
        deadline = time.monotonic() + timeout_s
        while not reports.empty() and time.monotonic() < deadline:
            time.sleep(0.05)


def _train_controller_class() -> type | None:
    """Train V2's controller class, or None where this Ray has none by that name and shape."""
    try:
        from ray.train.v2._internal.execution.controller import TrainController
    except ImportError:
        return None
    has_loop = inspect.iscoroutinefunction(getattr(TrainController, "run", None))
    return TrainController if has_loop and hasattr(TrainController, "get_result") else None


def worker_deaths(error: BaseException) -> list[BaseException]:
    """Why each worker of a failed Train run that died (process killed, node lost) died.

    Exceptions raised by user code arrive wrapped as UserExceptionWithTraceback on every rank
    that raised; a rank whose process died fails its health check instead, carrying the cause
    (Ray's ``ActorDiedError``, or ``OutOfMemoryError`` when its memory monitor killed it).
    Private: the health-check exception classes. Public way: none (``TrainingFailedError``
    does not say whether a worker died or raised).
    """
    failures = getattr(error, "worker_failures", None) or {}
    return [
        e.health_check_failure if isinstance(e, WorkerHealthCheckFailedError) else e
        for e in failures.values()
        if isinstance(e, WorkerHealthCheckFailedError | WorkerHealthCheckTimeoutError)
    ]


# Attributes of Ray's wrapper exceptions that hold what they wrap: Train's worker-group errors
# (public), task errors (public), controller failures and failed health checks (private).
WRAPPED_ATTRS = ("cause", "controller_failure", "health_check_failure")


# Ray Train names this logger by its file path, out of ``LoggingConfig``'s reach: its per-report
# INFO lines from every worker would drown the sweep's console. Public way: LoggingConfig, once it
# covers it.
TRAIN_CONTEXT_LOGGER = _train_context.__file__
# Tune's storage logs each checkpoint it persists at INFO, in the trial's process: for an inline
# trial that is a console line per epoch. Public way: none (Tune's verbosity covers its driver).
TUNE_STORAGE_LOGGER = "ray.train._internal.storage"

# Ray Train's list of the checkpoints a run tracks, rewritten after each report, and how it
# names them. lightsweep reads it to tidy checkpoints and keeps a whole copy against a full disk.
# Public way: none (``Result.best_checkpoints`` exists only after the run returns).
TRAIN_CHECKPOINT_SNAPSHOT = "checkpoint_manager_snapshot.json"


def snapshot_checkpoints(state: dict[str, Any]) -> set[str]:
    """The checkpoint directory names Ray Train's snapshot tracks."""
    named = {r["checkpoint_dir_name"] for r in state.get("checkpoint_results", [])}
    latest = state.get("latest_checkpoint_result")
    if latest:
        named.add(latest["checkpoint_dir_name"])
    return named


def snapshot_latest(state: dict[str, Any]) -> str | None:
    """The name of the latest checkpoint in Ray Train's snapshot."""
    latest = state.get("latest_checkpoint_result") or {}
    name: str | None = latest.get("checkpoint_dir_name")
    return name


# --- Ray core: workers started ahead (tuning.trial.warm_pool) -------------------------------

# What the raylet's Python workers started ahead can fail with where Ray moved the parts below.
PRESTART_ERRORS: tuple[type[BaseException], ...] = (AttributeError, ImportError, KeyError,
                                                    TypeError, ValueError)


def own_serialized_runtime_env() -> str:
    """This process's runtime env as Ray serialized it: what the actors it creates inherit.
    Private: the core worker's ``get_current_runtime_env``. Public way: none (the runtime
    context parses it, and its text is what a started-ahead worker's must equal)."""
    worker: Any = ray._private.worker.global_worker
    core_worker: Any = worker.core_worker
    return str(core_worker.get_current_runtime_env())


def train_worker_runtime_env(worker_runtime_env: dict[str, Any]) -> dict[str, Any]:
    """The runtime env Train gives a run's worker actors for ``RunConfig(worker_runtime_env=...)``:
    Train adds the variables it propagates from this process. Private: ``WorkerGroup``'s
    ``_get_worker_runtime_env``. Public way: none."""
    from ray.train.v2._internal.execution.worker_group.worker_group import WorkerGroup

    return dict(WorkerGroup._get_worker_runtime_env(worker_runtime_env))


def tune_trial_runtime_env() -> dict[str, Any]:
    """The runtime env Ray Tune gives a trial's actor when this process runs the Tuner (its
    default variables, and those it propagates from this process). Private: Tune's
    ``class_cache``. Public way: none."""
    from ray.tune.execution import class_cache

    env_vars = dict(class_cache.DEFAULT_ENV_VARS)
    env_vars.update({name: os.environ[name] for name in class_cache.ENV_VARS_TO_PROPAGATE
                     if name in os.environ})
    return {"env_vars": env_vars}


def child_runtime_env(parent: str, child: dict[str, Any]) -> str:
    """The serialized runtime env of an actor created with ``child`` by a process whose own is
    ``parent``, as Ray's core worker writes it (the child's keys over the parent's, their
    ``env_vars`` merged; compact JSON, keys sorted): a worker started ahead with this text is
    one the raylet gives that actor, any other text is not (measured on Ray 2.60).
    Private: the format. Public way: none."""
    merged: dict[str, Any] = json.loads(parent) if parent else {}
    for key, value in child.items():
        if key == "env_vars" and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return json.dumps(merged, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def prestart_workers(serialized_runtime_env: str, count: int, keep_alive_s: int) -> None:
    """Asks this node's raylet to start ``count`` Python workers of this job with that runtime
    env, kept for at least ``keep_alive_s`` while idle. Private: the raylet's
    ``PrestartWorkers`` gRPC call (Ray uses it for its own, env-less, workers). Public way:
    none (Ray has no Python API to start workers ahead with a given runtime env).

    Raises:
        grpc.RpcError: The raylet refused or did not answer.
    """
    from ray._private.grpc_utils import init_grpc_channel
    from ray.core.generated import common_pb2, node_manager_pb2, node_manager_pb2_grpc

    worker: Any = ray._private.worker.global_worker
    node: Any = worker.node
    stub = node_manager_pb2_grpc.NodeManagerServiceStub(
        init_grpc_channel(f"{node.node_ip_address}:{node.node_manager_port}"))
    request: Any = node_manager_pb2.PrestartWorkersRequest(  # type: ignore[attr-defined]
        language=common_pb2.Language.Value("PYTHON"),  # type: ignore[attr-defined]
        job_id=worker.current_job_id.binary(), keep_alive_duration_secs=keep_alive_s,
        num_workers=count)
    request.runtime_env_info.serialized_runtime_env = serialized_runtime_env
    stub.PrestartWorkers(request, timeout=10)


def free_cpus_here() -> float:
    """CPUs of this process's node that no task, actor or placement group holds now.
    Private: the GCS's per-node available resources. Public way: ``ray.available_resources()``,
    for the whole cluster only."""
    per_node: dict[str, dict[str, float]] = ray._private.state.available_resources_per_node()
    return float(per_node.get(ray.get_runtime_context().get_node_id(), {}).get("CPU", 0.0))


def internal_kv_get(key: str) -> str | None:
    """A value of Ray's internal key-value store (the GCS's), shared by the job's processes.
    Private: ``ray.experimental.internal_kv``. Public way: none (a named actor costs a process)."""
    from ray.experimental import internal_kv

    value = internal_kv._internal_kv_get(key)
    return None if value is None else bytes(value).decode()


def internal_kv_put(key: str, value: str) -> None:
    from ray.experimental import internal_kv

    internal_kv._internal_kv_put(key, value, overwrite=True)


# --- Ray Tune ---------------------------------------------------------------------------------

# Ray Tune's state files in an experiment directory, which it rewrites in place: lightsweep keeps
# whole copies against a full disk. Public way: none (``Tuner.can_restore`` says only yes or no).
TUNE_EXPERIMENT_STATE = "experiment_state-*.json"
TUNE_SEARCH_GENERATOR_STATE = "search_gen_state-*.json"  # a cloudpickle, for all its name
TUNE_SEARCHER_STATE = "searcher-state-*.pkl"
TUNE_STATE_PATTERNS = (TUNE_EXPERIMENT_STATE, TUNE_SEARCH_GENERATOR_STATE, TUNE_SEARCHER_STATE,
                       "tuner.pkl")


def is_searcher_state(name: str) -> bool:
    return fnmatch.fnmatch(name, TUNE_SEARCHER_STATE)


def newest_tune_state(names: list[str], pattern: str) -> str | None:
    """The file of ``pattern`` that Tune restores from: the greatest name (its session's time).

    Private: the rule of ``_find_newest_experiment_checkpoint`` and ``_load_newest_checkpoint``.
    Public way: none (Tune restores whatever it finds, and says nothing of which files)."""
    matching = fnmatch.filter(names, pattern)
    return max(matching) if matching else None


@dataclass(frozen=True)
class SavedTrial:
    """One trial of Tune's saved experiment state, as a restore brings it back."""

    trial_id: str
    status: str  # Tune's: PENDING, RUNNING, PAUSED, TERMINATED or ERROR
    config: dict[str, Any]
    last_result: dict[str, Any]

    @property
    def finished(self) -> bool:
        return self.status in ("TERMINATED", "ERROR")


def saved_trials(experiment_state: bytes) -> list[SavedTrial]:
    """The trials of one of Tune's experiment state files, in the order Tune created them.

    Private: the file's ``trial_data`` list of (trial state, run metadata), read as Tune's
    ``TuneController._restore_trials`` does. Public way: ``ExperimentAnalysis``, which also
    reads every trial's results (a sweep's worth of files, from cloud storage too) to say this."""
    from ray.tune.experiment import Trial

    trials = []
    for trial_state, run_metadata in json.loads(experiment_state)["trial_data"]:
        # The status as saved: a restored Trial turns RUNNING into PENDING.
        status = json.loads(trial_state)["status"]
        trial = Trial.from_json_state(trial_state, stub=True)
        trial.restore_run_metadata(run_metadata)
        trials.append(SavedTrial(trial.trial_id, status, dict(trial.config),
                                 dict(trial.last_result or {})))
    return trials


def search_generator_matching(saved: bytes, trials: list[SavedTrial]) -> bytes | None:
    """Tune's saved search-generator state made to agree with its saved ``trials``: proposals
    counted as there are trials, and those not finished live in the concurrency limit. None
    where it agrees already.

    Tune saves this state and its experiment state together but uploads them one file at a
    time; a driver killed in between leaves one newer than the other. A count ahead of the
    trials ends the sweep short of ``num_samples``; a trial live in the limit that Tune never
    restores holds a place of ``max_concurrent_trials`` for ever.

    Private: the keys of ``SearchGenerator.get_state`` (``counter``) and of its
    ``ConcurrencyLimiter``'s (``live_trials``, ``num_unfinished_live_trials``). Public way: none."""
    import ray.cloudpickle as cloudpickle

    state = cloudpickle.loads(saved)
    changed = state["counter"] != len(trials)
    state["counter"] = len(trials)
    limiter = state.get("name:ConcurrencyLimiter")
    if limiter is not None:
        live = {t.trial_id for t in trials if not t.finished}
        changed = changed or limiter["live_trials"] != live
        limiter["live_trials"] = live
        limiter["num_unfinished_live_trials"] = len(live)
    return cloudpickle.dumps(state) if changed else None


class OptunaSearchInternals(OptunaSearch):
    """Ray's ``OptunaSearch``, with the parts of it that :class:`TruthfulOptunaSearch` builds on.

    Private: ``_setup_study``, ``_ot_study``, ``_ot_trials``, ``_completed_trials``, ``_space``.
    Public way:
    none (Ray's searcher reports intermediate values at Tune's iteration and tells every ended
    trial COMPLETE; telling stopped trials PRUNED needs its study and trials, and matching a
    resumed sweep's trials to Optuna's needs its map of one to the other).
    """

    @override
    def _setup_study(self, mode: str | list[str]) -> None:
        super()._setup_study(mode)
        self.on_study_ready(self._ot_study)

    def on_study_ready(self, study: Any) -> None:
        """Called once the Optuna study exists (a subclass adds to it)."""

    @property
    def study(self) -> Any:
        """The Optuna study."""
        return self._ot_study

    def optuna_trial(self, trial_id: str) -> Any:
        """The live Optuna trial of Tune trial ``trial_id``."""
        return self._ot_trials[trial_id]

    def optuna_numbers(self) -> dict[int, str]:
        """Optuna's trial number of each Tune trial id it proposed, number first."""
        return {t.number: trial_id for trial_id, t in self._ot_trials.items()}

    def is_completed(self, trial_id: str) -> bool:
        return trial_id in self._completed_trials

    def mark_completed(self, trial_id: str) -> None:
        self._completed_trials.add(trial_id)

    def proposed(self) -> list[str]:
        """The Tune trial ids given an Optuna trial, in Optuna's order."""
        return sorted(self._ot_trials, key=lambda trial_id: self._ot_trials[trial_id].number)

    def hand_over(self, old: str, new: str) -> None:
        """Gives Tune trial ``new`` the Optuna trial of ``old``: ``suggest(new)`` then proposes
        its values again (OptunaSearch asks Optuna only for a trial id it has no trial for)."""
        self._ot_trials[new] = self._ot_trials.pop(old)
        if old in self._completed_trials:
            self._completed_trials.discard(old)
            self._completed_trials.add(new)

    def ask_with(self, trial_id: str, params: dict[str, Any]) -> None:
        """Gives Tune trial ``trial_id`` a new Optuna trial with these values: ``suggest`` then
        proposes them (the define-by-run space suggests what Optuna was asked to enqueue)."""
        self.study.enqueue_trial(params)
        self._ot_trials[trial_id] = (
            self.study.ask() if callable(self._space)
            else self.study.ask(fixed_distributions=self._space))


class PopulationBasedTrainingOverTrain(PopulationBasedTraining):
    """Ray Tune's PBT (its quantiles, perturbation schedule and explore step), exploiting the
    checkpoints of the trials' Ray Train runs instead of Tune's own.

    Private: ``_checkpoint_or_exploit`` and ``_exploit`` (overridden), ``_trial_state`` and
    ``_PBTTrialState``, ``_get_new_config``, ``_hyperparam_mutations``, ``_num_perturbations``,
    ``_make_experiment_tag``.
    Public way: none. PBT clones only checkpoints reported to Tune (``tune.report(checkpoint=)``);
    a trial that drives a Ray Train run reports Train's checkpoints as a path among its metrics
    (``TuneReportCallback``), so stock PBT finds nothing to clone and never exploits, and Ray
    documents no PBT path for Train V2. A subclass decides, in :meth:`prepare_exploit`, how a
    trial continues from its donor's Train checkpoint.
    """

    @override
    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        # Stock PBT refuses every searcher: PBT's changes would falsify what the searcher
        # believes a trial ran with. lightsweep's searcher proposes the first values only and
        # hears when a trial's values change (tuning.driver.searcher), so it stays truthful.
        self._trial_state[trial] = _PBTTrialState(trial)

    def prepare_exploit(self, trial: Any, donor: Any, config: dict[str, Any]) -> dict[str, Any] | None:
        """Readies ``trial`` to continue from ``donor``'s latest checkpoint with ``config``
        (the donor's, explored); returns the config to restart it with, or None to skip."""
        raise NotImplementedError

    @override
    def _checkpoint_or_exploit(self, trial: Any, tune_controller: Any,
                               upper_quantile: list[Any], lower_quantile: list[Any]) -> None:
        # Stock PBT has a top trial save a checkpoint for later; here every top trial is a
        # donor as it stands: its Train run always keeps its latest checkpoint.
        if trial in lower_quantile:
            self._exploit(tune_controller, trial, random.choice(upper_quantile))

    @override
    def _exploit(self, tune_controller: Any, trial: Any, trial_to_clone: Any) -> None:
        explored, _ = self._get_new_config(trial, trial_to_clone)
        config = self.prepare_exploit(trial, trial_to_clone, explored)
        if config is None:
            return
        state, donor_state = self._trial_state[trial], self._trial_state[trial_to_clone]
        if trial.status != "PAUSED":
            tune_controller.pause_trial(trial, should_checkpoint=False)
        trial.set_experiment_tag(
            _make_experiment_tag(state.orig_tag, config, self._hyperparam_mutations))
        trial.set_config(config)
        self._num_perturbations += 1
        state.last_perturbation_time = donor_state.last_perturbation_time
        state.last_train_time = donor_state.last_train_time


# --- Lightning, through Ray -------------------------------------------------------------------


def ray_lightning_namespace() -> Any:
    """The Lightning namespace (``lightning.pytorch`` or ``pytorch_lightning``) that Ray's
    Lightning utilities were built against. Private: ``ray.train.lightning._lightning_utils``.
    Public way: none (Ray picks one at import time and says not which)."""
    from ray.train.lightning._lightning_utils import pl

    return pl


# --- W&B ----------------------------------------------------------------------------------------

# How often W&B writes what it buffered (15 s by default): ASHA ends a stopped trial's processes
# with no time to finish its run. An experimental setting (``x_`` prefix). Public way: none.
WANDB_FLUSH_SETTING = "x_transaction_log_flush_interval"
