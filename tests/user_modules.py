"""User code for the tests, importable by Ray workers as ``tests.user_modules``: modules that
misbehave on purpose, and a callback of the user's own."""

from __future__ import annotations

import time
from typing import Any

import lightning.pytorch as pl
import torch

from lightning_modules import Classifier

HOG_CHUNK_BYTES = 128 * 1024**2
HOG_CAP_CHUNKS = 48  # 6 GiB


class Exploding(Classifier):
    """Raises in training above a learning rate, as a NaN check in user code would."""

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        if self.hparams.lr > 0.05:
            raise FloatingPointError(f"loss is nan (lr={self.hparams.lr:.3f})")
        return super().training_step(batch, batch_idx)


class OutOfMemoryWhenWide(Classifier):
    """Runs out of memory in training when wider than 64 units, as a too-large model on a GPU does."""

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        if self.hparams.width > 64:
            raise torch.OutOfMemoryError(
                f"CUDA out of memory. Tried to allocate 2.00 GiB (width={self.hparams.width})"
            )
        return super().training_step(batch, batch_idx)


class HogsMemoryWhenWide(Classifier):
    """Allocates host memory without bound when wider than 64 units, until Ray's memory monitor
    kills the worker (capped, so that a test without a monitor fails rather than fills the host)."""

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        if self.hparams.width > 64:
            hoard = []
            for _ in range(HOG_CAP_CHUNKS):
                hoard.append(torch.ones(HOG_CHUNK_BYTES // 4))  # touched, so really resident
                time.sleep(0.05)
            raise RuntimeError("Ray's memory monitor did not stop this worker")
        return super().training_step(batch, batch_idx)


class EpochCounter(pl.Callback):
    """A user's own callback, named in a sweep file by its import path: counts epochs into a
    metric the trial reports."""

    def __init__(self, start: int = 0) -> None:
        self.count = start

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.count += 1
        pl_module.log("user/epochs_counted", float(self.count), sync_dist=True)
