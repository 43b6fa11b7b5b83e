"""The trainer of a trial's Train run: Ray's ``TorchTrainer``, with lightsweep's layers on it.

Each layer saves a process, an import or a request per trial, and each is its own module,
probed before use (:mod:`tuning._internals.probe`): ``lazy-torch-config``, ``no-dataset-manager``,
``controller-in-trial`` with ``sync-actor-per-process``, ``cleaner-per-process`` (or, where the
sweep's driver removes dead trials' placement groups, no cleaner at all) and
``no-autoscaler-requests``. In stock-Ray mode a trial's trainer is Ray's ``TorchTrainer`` itself.
Private: the trainer's ``_create_default_callbacks`` and ``_initialize_and_run_controller``,
overridden here.
"""

from __future__ import annotations

import os
import time
from typing import Any, cast

from ray import tune
from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer
from ray.tune.integration.ray_train import CHECKPOINT_PATH_KEY, TuneReportCallback
from typing_extensions import override

from tuning._internals import cleaner, controller
from tuning._internals.autoscaler import without_autoscaler
from tuning._internals.datasets import without_dataset_manager
from tuning._internals.placement_groups import PLACEMENT_GROUPS_ENV
from tuning._internals.probe import enabled, stock_ray
from tuning._internals.torch_backend import LAYER as LAZY_TORCH
from tuning._internals.torch_backend import lazy_torch_config_class


class LayeredTorchTrainer(DataParallelTrainer):
    """Ray's ``TorchTrainer`` with each of lightsweep's layers that is on.

    Attributes:
        controller_ran_in: Where the last fit ran Train's controller: "trial" (this process)
            or "actor" (Ray's own).
        placement_groups_removed_by: Who removes the run's placement group should the process
            running its controller die: "driver", "cleaner per process" or "cleaner per run".
        synchronization_actor_per: Whether the last fit's run met at a synchronization actor of
            this process ("process") or one of its own ("run").
    """

    controller_ran_in: str | None = None
    placement_groups_removed_by: str | None = None
    synchronization_actor_per: str | None = None

    def __init__(self, train_loop_per_worker: Any, *, scaling_config: Any, **kwargs: Any) -> None:
        # TorchTrainer's own default: NCCL between GPUs, gloo between CPUs.
        backend = "nccl" if scaling_config.use_gpu else "gloo"
        if enabled(LAZY_TORCH):
            config = lazy_torch_config_class()(backend=backend)
        else:
            from ray.train.torch import TorchConfig

            config = TorchConfig(backend=backend)
        super().__init__(train_loop_per_worker, backend_config=config,
                         scaling_config=scaling_config, **kwargs)

    @override
    def _create_default_callbacks(self) -> list[Any]:
        callbacks: list[Any] = super()._create_default_callbacks()
        if os.environ.get(PLACEMENT_GROUPS_ENV) == "driver":
            self.placement_groups_removed_by = "driver"
            callbacks = [c for c in callbacks if not cleaner.is_train_cleaner(c)]
        elif controller.runs_in_trial() and enabled(cleaner.LAYER):
            self.placement_groups_removed_by = "cleaner per process"
            callbacks = cleaner.with_cleaner_per_process(callbacks)
        else:
            self.placement_groups_removed_by = "cleaner per run"
        return without_dataset_manager(callbacks, bool(self.datasets))

    @override
    def _initialize_and_run_controller(self, **controller_init_kwargs: Any) -> Any:
        controller_init_kwargs = without_autoscaler(controller_init_kwargs)
        if not controller.runs_in_trial():
            self.controller_ran_in = "actor"
            return super()._initialize_and_run_controller(**controller_init_kwargs)
        self.controller_ran_in = "trial"
        self.synchronization_actor_per = ("process" if controller.reuse_synchronization_actor()
                                          else "run")
        return controller.run_controller_here(controller_init_kwargs)


def trainer_class() -> type[DataParallelTrainer]:
    """The trainer of a trial's Train runs: Ray's ``TorchTrainer`` in stock-Ray mode."""
    if stock_ray():
        from ray.train.torch import TorchTrainer

        # ray.train.torch exports Train V2's trainer at run time; type checkers see V1's.
        return cast(type[DataParallelTrainer], TorchTrainer)
    return LayeredTorchTrainer


class ReportToTune(TuneReportCallback):
    """Ray's report of a Train run to Tune (rank 0's metrics, the checkpoint's path), handed to
    Tune in the trial's own thread where Train's controller runs there, else through Ray's
    queue actor (Ray's ``TuneReportCallback`` as it is).

    In the trial's thread, ``tune.report`` returns once Tune has taken the report, and ends the
    thread when Tune stopped the trial: the run then ends at once, and the process can go on to
    another trial. Ray's callback instead puts each report in a one-item queue actor (a process
    per trial), which a stopped trial's controller would wait on forever.
    """

    def __init__(self) -> None:
        self.direct = controller.runs_in_trial()
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
