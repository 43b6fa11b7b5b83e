"""Train's controller run in the trial's own process, and its runs' synchronization actor kept.

Ray starts a controller actor per Train run: one more process per trial to start, import Ray and
torch in, and hold (0.43 GB measured). Here the trial's process, which only waited for it, runs
its control loop, and a stopped trial's run is aborted in place so that the process can go on to
the next trial (Tune reuses it). A placement group outlives the process that made it: should the
trial's process die in mid-run, the sweep's driver removes the run's group
(:mod:`tuning._internals.placement_groups`), or else Train's cleaner, one per process
(:mod:`tuning._internals.cleaner`).
Private: ``TrainController``, its callback manager and state, the trainer's
``_initialize_and_run_controller``. Public way: none; where this layer is off, each run has
Ray's own controller actor.

The runs of one process also meet at one synchronization actor, renewed between runs, where
Train starts and kills one per run. Private: the worker-group module's ``SynchronizationActor``
and the worker-group state's ``_shutdown_sync_actor``, replaced in this process. Public way: none.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from tuning._internals.probe import enabled, layer

LAYER = "controller-in-trial"
SYNC_LAYER = "sync-actor-per-process"


@layer(LAYER, "running Train's controller in the trial's process",
       "each Train run starts a controller actor of its own")
def _probe() -> None:
    from ray.train.v2._internal.execution.controller import TrainController
    from ray.train.v2._internal.execution.controller.state import AbortedState
    from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer

    getattr(DataParallelTrainer, "_initialize_and_run_controller")  # noqa: B009
    for name in ("get_result", "get_state", "get_worker_group", "_set_state"):
        getattr(TrainController, name)
    if not inspect.iscoroutinefunction(TrainController.run):
        raise TypeError("TrainController.run is not a coroutine")
    del AbortedState


@layer(SYNC_LAYER, "one synchronization actor per trial process",
       "each Train run starts its own, as Ray does")
def _sync_probe() -> None:
    from ray.train.v2._internal.execution.worker_group import state, worker_group

    getattr(state, "_shutdown_sync_actor")  # noqa: B009
    group_module: Any = worker_group
    group_module.SynchronizationActor.__ray_actor_class__  # noqa: B018


def runs_in_trial() -> bool:
    """Whether Train runs started in this process run their controller here."""
    return enabled(LAYER)


class _ReusedSynchronizationActor:
    """Stands in for Train's ``SynchronizationActor`` class where a run's worker group starts
    it: the first run of this process starts a ``RenewableSynchronizationActor``, each later
    one renews it (a fresh barrier) instead of starting a process."""

    def __init__(self) -> None:
        self.handle: Any = None
        self._options: dict[str, Any] = {}

    def options(self, **options: Any) -> _ReusedSynchronizationActor:
        self._options = options  # Train's: on this process's node
        return self

    def remote(self, *, timeout_s: float | None, warn_interval_s: float) -> Any:
        import ray
        from ray.exceptions import RayActorError

        from tuning._internals.sync_actor import RenewableSynchronizationActor

        if self.handle is not None:
            try:
                ray.get(self.handle.renew.remote(timeout_s, warn_interval_s))
                return self.handle
            except RayActorError:
                self.handle = None  # died (killed by hand, say): start another
        self.handle = RenewableSynchronizationActor.options(**self._options).remote(
            timeout_s=timeout_s, warn_interval_s=warn_interval_s)
        return self.handle


REUSED_SYNCHRONIZATION_ACTOR = _ReusedSynchronizationActor()


def reuse_synchronization_actor() -> bool:
    """Makes the Train runs of this process meet at one synchronization actor, kept between
    runs; False (each run starts and kills its own) where the layer is off."""
    if not enabled(SYNC_LAYER):
        return False
    from ray.train.v2._internal.execution.worker_group import state, worker_group

    if getattr(worker_group, "SynchronizationActor", None) is REUSED_SYNCHRONIZATION_ACTOR:
        return True
    shutdown = state._shutdown_sync_actor

    def keep_the_reused_one(sync_actor: Any) -> None:
        if sync_actor is not REUSED_SYNCHRONIZATION_ACTOR.handle:
            shutdown(sync_actor)

    state._shutdown_sync_actor = keep_the_reused_one
    setattr(worker_group, "SynchronizationActor", REUSED_SYNCHRONIZATION_ACTOR)  # noqa: B010
    return True


def run_controller_here(controller_kwargs: dict[str, Any]) -> Any:
    """Runs a Train run's controller in this thread to its end; returns the run's result."""
    from ray.train.v2._internal.execution.controller import TrainController

    controller = TrainController(**controller_kwargs)
    try:
        # Tune runs a trial's function in a thread of its own: no event loop runs there yet.
        asyncio.run(controller.run())
    except SystemExit:
        # Tune stopped the trial: its report (in this thread) ends the trial's function so. End
        # the run here, so that its workers and placement group are gone before Tune hands this
        # process to the next trial (reuse_actors).
        _abort_in_place(controller)
        raise
    return controller.get_result()


def _abort_in_place(controller: Any) -> None:
    """``TrainController.abort()`` but for its last step, ``ray.actor.exit_actor()``: the process
    is the trial's, which Tune reuses. Kills the run's workers and removes their placement group
    (the process's cleaner, where there is one, stays for its next run).

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
