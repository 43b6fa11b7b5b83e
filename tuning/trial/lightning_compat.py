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
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import ray
import torch
from ray.train.lightning import RayDDPStrategy, RayLightningEnvironment, prepare_trainer

from tuning._internals.lightning import ENVIRONMENT_MEMBERS, STRATEGY_MEMBERS, members
from tuning.contracts import RAN_PREFIX, RESENT_CHECKPOINT_KEY
from tuning.record.layout import CHECKPOINT_NAME
from tuning.trial.session import TrialSession

logger = logging.getLogger(__name__)

def _count_nodes() -> int:
    """How many Ray nodes this run's ranks are on (a collective: every rank must call it)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return 1  # one process
    node = ray.get_runtime_context().get_node_id()
    nodes: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(nodes, node)
    return len(set(nodes))


def _what_runs(trainer: Any, session: TrialSession) -> dict[str, str]:
    """What the trial trains with, as the leaderboard records it: the precision Lightning runs
    (which may differ from the one asked for), the device's name and the trial runner."""
    device = trainer.strategy.root_device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    return {f"{RAN_PREFIX}precision": str(trainer.precision), f"{RAN_PREFIX}device": name,
            f"{RAN_PREFIX}runner": session.runner}


class _EpochReport:
    """Reports each epoch's metrics and a checkpoint to the trial's session (Ray Train, and so
    Tune; or Tune itself, inline).

    Differs from Ray's ``RayTrainReportCallback`` where a sweep needs it: ``epoch`` counts
    completed epochs (1-based, restored with the checkpoint, so ASHA can schedule on it after a
    restore), only scalar metrics are sent, and only rank 0 hands over a checkpoint.

    Each checkpoint carries every report of the run up to it. A run resumed from it sends again
    those after ``known_epoch`` (the last epoch the sweep's leaderboard recorded), or at least the
    last: Train may have taken reports (and registered their checkpoints) that never reached Tune
    before its driver died, and when that was the last epoch there would be no later one to make
    up for it.

    Args:
        session: Where the fit reports (:mod:`tuning.trial.session`).
        known_epoch: The trial's last epoch that the sweep recorded before this run started.
        resend: False when the checkpoint is another trial's (population-based training): its
            reports are that trial's, and none is sent again.
    """

    def __init__(self, session: TrialSession, known_epoch: int = 0, resend: bool = True) -> None:
        super().__init__()
        self._session = session
        self._known_epoch = known_epoch
        self._resend = resend
        self._reports: list[dict[str, float]] = []
        self._to_resend: list[dict[str, float]] = []
        self._num_nodes = 1
        self._ran: dict[str, str] = {}

    def state_dict(self) -> dict[str, Any]:
        return {"reports": list(self._reports)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._reports = list(state_dict["reports"])
        unknown = [r for r in self._reports if r["epoch"] > self._known_epoch]
        self._to_resend = (unknown or self._reports[-1:]) if self._resend else []

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self._num_nodes = _count_nodes()
        self._ran = _what_runs(trainer, self._session)
        # The last report to send again is the restored checkpoint's own: it names that
        # checkpoint, which the record lacks if the epoch never reached it.
        restored = self._session.checkpoint() if self._to_resend else None
        if restored is not None:
            self._to_resend[-1] = {**self._to_resend[-1], RESENT_CHECKPOINT_KEY: restored.path}
        for report in self._to_resend:  # every rank restored them: reports are collective
            self._session.report(report, None)
        self._to_resend = []
        trainer.should_stop = trainer.should_stop or self._session.stop_requested

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        metrics = {
            name: float(value) for name, value in trainer.callback_metrics.items()
            if getattr(value, "numel", lambda: 1)() == 1
        }
        metrics["epoch"] = trainer.current_epoch + 1
        metrics["step"] = trainer.global_step
        metrics["world_size"] = trainer.world_size  # makes trials comparable across worker counts
        metrics["num_nodes"] = self._num_nodes
        self._reports.append(metrics)
        with tempfile.TemporaryDirectory(prefix="lightsweep-ckpt-") as tmp:
            # Every rank takes part in saving (a collective); only rank 0 writes the file.
            trainer.save_checkpoint(Path(tmp, CHECKPOINT_NAME).as_posix(), weights_only=False)
            checkpoint = (self._session.checkpoint_class.from_directory(tmp)
                          if trainer.global_rank == 0 else None)
            # Uploaded in place (SYNC). Train's ASYNC mode measured 0.38-0.44 -> 0.07-0.09 s per
            # epoch with a 100 MB checkpoint, but lets training run epochs ahead of Tune and
            # moves a full disk's error into a background thread, whose traceback reaches the
            # console after the sweep's own message: kept off until those are handled.
            self._session.report({**metrics, **self._ran}, checkpoint,
                                 last=metrics["epoch"] >= (trainer.max_epochs or 0) > 0)
            trainer.strategy.barrier()
        if self._session.stop_requested:  # the epoch ends (its loggers get it), then the fit
            trainer.should_stop = True


@functools.cache
def ray_lightning(pl: ModuleType) -> tuple[type, type, type]:
    """Returns (strategy class, cluster-environment class, report-callback class) for ``pl``."""
    callback = type("EpochReport", (_EpochReport, pl.Callback), {"__module__": __name__})
    if _rays_namespace(pl):
        return RayDDPStrategy, RayLightningEnvironment, callback
    strategy = type(
        "RayDDPStrategy", (pl.strategies.DDPStrategy,),
        {"__module__": __name__,
         **members(RayDDPStrategy, STRATEGY_MEMBERS)},
    )
    environments = importlib.import_module(f"{pl.__name__}.plugins.environments")
    environment = type(
        "RayLightningEnvironment", (environments.LightningEnvironment,),
        {"__module__": __name__,
         **members(RayLightningEnvironment, ENVIRONMENT_MEMBERS)},
    )
    return strategy, environment, callback


def prepare(trainer: Any, pl: ModuleType) -> Any:
    """Ray's ``prepare_trainer`` checks, where they apply (its classes are of one namespace)."""
    return prepare_trainer(trainer) if _rays_namespace(pl) else trainer


def _rays_namespace(pl: ModuleType) -> bool:
    """Whether Ray's Lightning classes were built on namespace ``pl``."""
    return issubclass(RayDDPStrategy, pl.strategies.DDPStrategy)
