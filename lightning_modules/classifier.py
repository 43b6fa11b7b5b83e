"""A LightningModule that trains any network of :mod:`lightning_modules.nets` as a classifier.

Written the way Lightning's docs teach, so it doubles as the example of what a user brings:
hyperparameters are ``__init__`` arguments saved with ``save_hyperparameters()``, and the
monitored metrics are logged per epoch with ``sync_dist=True`` so every DDP rank agrees.

Try it without Ray::

    python -m lightning_modules.classifier
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch.nn import functional as F
from typing_extensions import override

from lightning_modules.nets import build_net

OPTIMIZERS = ("adamw", "adam", "sgd")


class Classifier(pl.LightningModule):
    """Cross-entropy classifier.

    Args:
        arch: Network architecture: ``mlp``, ``cnn1d`` or ``cnn2d``.
        input_shape: Shape of one input, without the batch axis (``[40]`` for MNIST-1D).
        num_classes: Number of classes.
        width: Hidden units (MLP) or channels (CNNs).
        depth: Hidden layers (MLP) or convolutions (1-D CNN).
        dropout: Dropout probability.
        lr: Learning rate.
        weight_decay: Weight decay (decoupled for AdamW).
        optimizer: ``adamw``, ``adam`` or ``sgd`` (with Nesterov momentum).
        momentum: Momentum for SGD.
    """

    def __init__(
        self,
        arch: str = "mlp",
        input_shape: Sequence[int] = (40,),
        num_classes: int = 10,
        width: int = 64,
        depth: int = 2,
        dropout: float = 0.0,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        optimizer: str = "adamw",
        momentum: float = 0.9,
    ) -> None:
        super().__init__()
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {OPTIMIZERS}")
        self.save_hyperparameters()
        self.net = build_net(arch, input_shape, num_classes, width, depth, dropout)

    @override
    def forward(self, x: Tensor) -> Tensor:
        logits: Tensor = self.net(x)
        return logits

    def _loss_and_acc(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits.float(), y)
        acc = (logits.argmax(dim=-1) == y).float().mean()
        return loss, acc

    @override
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss, _ = self._loss_and_acc(batch)
        self.log("train/loss", loss, on_step=False, on_epoch=True, sync_dist=True,
                 batch_size=len(batch[1]))
        return loss

    @override
    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        loss, acc = self._loss_and_acc(batch)
        # batch_size makes the epoch value a per-sample mean even with a short last batch.
        n = len(batch[1])
        self.log("val/loss", loss, on_epoch=True, sync_dist=True, batch_size=n)
        self.log("val/acc", acc, on_epoch=True, sync_dist=True, batch_size=n, prog_bar=True)

    @override
    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        loss, acc = self._loss_and_acc(batch)
        n = len(batch[1])
        self.log("test/loss", loss, on_epoch=True, sync_dist=True, batch_size=n)
        self.log("test/acc", acc, on_epoch=True, sync_dist=True, batch_size=n)

    @override
    def configure_optimizers(self) -> Any:
        hp: Any = self.hparams
        if hp.optimizer == "sgd":
            return torch.optim.SGD(
                self.parameters(), lr=hp.lr, momentum=hp.momentum, nesterov=True,
                weight_decay=hp.weight_decay,
            )
        optim_cls = torch.optim.AdamW if hp.optimizer == "adamw" else torch.optim.Adam
        return optim_cls(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)


if __name__ == "__main__":
    from lightning_modules.datamodules import MNIST1DDataModule

    model = Classifier(arch="cnn1d", input_shape=[40], width=32, depth=3, lr=3e-3)
    trainer = pl.Trainer(max_epochs=5, accelerator="cpu", logger=False, enable_checkpointing=False)
    datamodule = MNIST1DDataModule(batch_size=64)
    trainer.fit(model, datamodule=datamodule)
    trainer.test(model, datamodule=datamodule)
