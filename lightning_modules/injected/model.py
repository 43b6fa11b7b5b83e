"""A classifier whose network, optimizer and learning-rate schedule are injected."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torch.nn import functional as F
from typing_extensions import override


class InjectedClassifier(pl.LightningModule):
    """Cross-entropy classifier over any network.

    Args:
        net: The network, built by LightningCLI (or lightsweep) from its ``class_path``.
        optimizer: Builds the optimizer from the parameters (LightningCLI's
            ``OptimizerCallable``), e.g. ``{class_path: torch.optim.SGD, init_args: {lr: 0.1}}``.
        scheduler: Builds a learning-rate scheduler from the optimizer, or None.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: OptimizerCallable = torch.optim.Adam,
        scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__()
        # The network is an object, not a hyperparameter: a checkpoint is loaded with it rebuilt.
        self.save_hyperparameters(ignore=["net"])
        self.net = net
        self.optimizer = optimizer
        self.scheduler = scheduler

    @override
    def forward(self, x: Tensor) -> Tensor:
        logits: Tensor = self.net(x)
        return logits

    def _loss_and_acc(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        x, y = batch
        logits = self(x)
        return F.cross_entropy(logits, y), (logits.argmax(dim=-1) == y).float().mean()

    @override
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss, _ = self._loss_and_acc(batch)
        self.log("train/loss", loss, on_step=False, on_epoch=True, sync_dist=True,
                 batch_size=len(batch[1]))
        return loss

    @override
    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        loss, acc = self._loss_and_acc(batch)
        self.log_dict({"val/loss": loss, "val/acc": acc}, on_epoch=True, sync_dist=True,
                      batch_size=len(batch[1]))

    @override
    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer(self.parameters())
        if self.scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler(optimizer)}
