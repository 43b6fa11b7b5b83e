"""MNIST-1D as a LightningDataModule: generated once into ``data_dir`` (as the template's MNIST
is downloaded there), then read from it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning import LightningDataModule
from torch.utils.data import DataLoader, TensorDataset


class MNIST1DDataModule(LightningDataModule):
    """MNIST-1D: 4000 training and 1000 test sequences of length 40.

    Args:
        data_dir: Where the dataset file is kept.
        batch_size: Samples per batch.
        num_workers: DataLoader worker processes.
        val_fraction: Fraction of the training sequences held out for validation.
    """

    def __init__(self, data_dir: str = "data/", batch_size: int = 64, num_workers: int = 0,
                 val_fraction: float = 0.1) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.data: dict[str, TensorDataset] = {}

    @property
    def file(self) -> Path:
        return Path(self.hparams.data_dir) / "mnist1d.npz"

    def prepare_data(self) -> None:
        if self.file.exists():
            return
        from mnist1d.data import get_dataset_args, make_dataset

        data = make_dataset(get_dataset_args())
        self.file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.file.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, x=data["x"], y=data["y"], x_test=data["x_test"], y_test=data["y_test"])
        os.replace(tmp, self.file)

    def setup(self, stage: str | None = None) -> None:
        if self.data:
            return
        self.prepare_data()
        with np.load(self.file) as d:
            x, y, x_test, y_test = d["x"], d["y"], d["x_test"], d["y_test"]
        order = np.random.default_rng(0).permutation(len(y))
        n_val = round(self.hparams.val_fraction * len(y))
        val, train = order[:n_val], order[n_val:]

        def tensors(xs: Any, ys: Any) -> TensorDataset:
            return TensorDataset(torch.as_tensor(xs, dtype=torch.float32),
                                 torch.as_tensor(ys, dtype=torch.long))

        self.data = {"train": tensors(x[train], y[train]), "val": tensors(x[val], y[val]),
                     "test": tensors(x_test, y_test)}

    def _loader(self, split: str, shuffle: bool) -> DataLoader[Any]:
        return DataLoader(self.data[split], batch_size=self.hparams.batch_size, shuffle=shuffle,
                          num_workers=self.hparams.num_workers)

    def train_dataloader(self) -> DataLoader[Any]:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader[Any]:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader[Any]:
        return self._loader("test", shuffle=False)
