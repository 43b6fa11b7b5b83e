"""Ray Train's Lightning integration, for whichever Lightning namespace the user's code uses.

``ray.train.lightning`` subclasses the namespace it imports first (``lightning.pytorch``), and
Lightning rejects strategies and plugins of the other namespace (ray-project/ray#47089). For a
LightningModule written against ``pytorch_lightning``, the same strategy and environment are
rebuilt on that namespace's base classes from Ray's own method definitions.
"""

from __future__ import annotations

import functools
import importlib
import logging
import shutil
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import ray
import ray.train
import torch
from ray.train.lightning import RayDDPStrategy, RayLightningEnvironment, prepare_trainer
from ray.train.lightning._lightning_utils import pl as ray_pl

from tuning.layout import CHECKPOINT_NAME

logger = logging.getLogger(__name__)

def _copy_members(cls: type, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: cls.__dict__[name] for name in names}


def _count_nodes() -> int:
    """How many Ray nodes this run's ranks are on (a collective: every rank must call it)."""
    node = ray.get_runtime_context().get_node_id()
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return 1
    nodes: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(nodes, node)
    return len(set(nodes))


class _EpochReport:
    """Reports each epoch's metrics and a checkpoint to Ray Train (and so to Tune).

    Differs from Ray's ``RayTrainReportCallback`` where a sweep needs it: ``epoch`` counts
    completed epochs (1-based, restored with the checkpoint, so ASHA can schedule on it after a
    restore), only scalar metrics are sent, and only rank 0 hands over a checkpoint.

    Each checkpoint carries the report it was taken with. A run resumed from it sends that
    report again first: the run may have stopped after saving the checkpoint but before Tune
    got the report, and when that was the last epoch there would be no later one to make up.
    """

    def __init__(self) -> None:
        super().__init__()
        self._last_report: dict[str, float] | None = None
        self._restored_report: dict[str, float] | None = None
        self._num_nodes = 1

    def state_dict(self) -> dict[str, Any]:
        return {"last_report": self._last_report}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored_report = state_dict.get("last_report")

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self._num_nodes = _count_nodes()
        if self._restored_report is not None:  # every rank restored it: report is collective
            ray.train.report(self._restored_report)
            self._restored_report = None

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        metrics = {
            name: float(value) for name, value in trainer.callback_metrics.items()
            if getattr(value, "numel", lambda: 1)() == 1
        }
        metrics["epoch"] = trainer.current_epoch + 1
        metrics["step"] = trainer.global_step
        metrics["world_size"] = trainer.world_size  # makes trials comparable across worker counts
        metrics["num_nodes"] = self._num_nodes
        self._last_report = metrics
        # Ray deletes the directory once it has uploaded the checkpoint (every rank makes one:
        # saving is a collective, though only rank 0 writes the file).
        tmp = tempfile.mkdtemp(prefix="lightsweep-ckpt-")
        trainer.save_checkpoint(Path(tmp, CHECKPOINT_NAME).as_posix(), weights_only=False)
        checkpoint = ray.train.Checkpoint.from_directory(tmp) if trainer.global_rank == 0 else None
        if checkpoint is None:
            shutil.rmtree(tmp, ignore_errors=True)
        # Uploaded in the background while the next epoch trains: the report (metrics with
        # their checkpoint, in order) reaches Tune once the upload is done. A 100 MB
        # checkpoint held each epoch's end 0.38-0.44 s uploading in place, 0.07-0.09 s so.
        # A failed upload (a full disk) still fails the run, at the next step.
        ray.train.report(metrics, checkpoint=checkpoint,
                         checkpoint_upload_mode=ray.train.CheckpointUploadMode.ASYNC,
                         delete_local_checkpoint_after_upload=True)
        trainer.strategy.barrier()


@functools.cache
def ray_lightning(pl: ModuleType) -> tuple[type, type, type]:
    """Returns (strategy class, cluster-environment class, report-callback class) for ``pl``."""
    callback = type("EpochReport", (_EpochReport, pl.Callback), {"__module__": __name__})
    if pl is ray_pl:
        return RayDDPStrategy, RayLightningEnvironment, callback
    strategy = type(
        "RayDDPStrategy", (pl.strategies.DDPStrategy,),
        {"__module__": __name__,
         **_copy_members(RayDDPStrategy, ("root_device", "distributed_sampler_kwargs"))},
    )
    environments = importlib.import_module(f"{pl.__name__}.plugins.environments")
    environment = type(
        "RayLightningEnvironment", (environments.LightningEnvironment,),
        {"__module__": __name__,
         **_copy_members(RayLightningEnvironment, (
             "world_size", "global_rank", "local_rank", "node_rank", "set_world_size",
             "set_global_rank", "teardown"))},
    )
    return strategy, environment, callback


def prepare(trainer: Any, pl: ModuleType) -> Any:
    """Ray's ``prepare_trainer`` checks, where they apply (its classes are of one namespace)."""
    return prepare_trainer(trainer) if pl is ray_pl else trainer
