"""LightningDataModules over real data that is available offline.

Every DataModule takes ``batch_size`` (per DDP worker: lightsweep divides a sweep's global batch
by the number of workers) and ``data_dir``, reads local files, and downloads only when asked to.

- :class:`MNIST1DDataModule`: MNIST-1D, generated procedurally and seeded (never downloaded).
- :class:`DigitsDataModule`: scikit-learn's 1797 real 8x8 handwritten digits (bundled).
- :class:`FashionMNISTDataModule`, :class:`MNISTDataModule`: torchvision datasets read from raw
  IDX files; Fashion-MNIST is found in Debian's ``dataset-fashion-mnist`` package when installed.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset
from typing_extensions import override

logger = logging.getLogger(__name__)

Split = tuple[np.ndarray, np.ndarray]

DATA_DIR_ENV = "LIGHTSWEEP_DATA_DIR"


def default_data_dir() -> Path:
    """Where DataModules keep their files when no ``data_dir`` is given.

    An absolute path (``$LIGHTSWEEP_DATA_DIR``, else ``~/.cache/lightsweep/data``), because Ray runs
    workers in other working directories than the one a sweep is launched from.
    """
    return Path(os.environ.get(DATA_DIR_ENV) or Path.home() / ".cache" / "lightsweep" / "data")


def _atomic_write(path: Path, write: Any) -> None:
    """Writes a file through ``write(tmp_path)`` then renames it, so no reader sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _seeded_split(n: int, fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    bounds = np.cumsum([round(f * n) for f in fractions[:-1]])
    return np.split(order, bounds)


class ArrayDataModule(pl.LightningDataModule):
    """A DataModule over in-memory arrays; subclasses say how to load the three splits.

    Args:
        batch_size: Samples per batch on each worker.
        data_dir: Directory for this DataModule's files (see :func:`default_data_dir`).
        num_workers: DataLoader worker processes (0 loads in the training process).
        pin_memory: Page-locked batches, which copy to a GPU faster (and asynchronously).
    """

    def __init__(
        self, batch_size: int = 64, data_dir: str | None = None, num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.batch_size = batch_size
        self.data_dir = Path(data_dir).expanduser() if data_dir else default_data_dir()
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.splits: dict[str, TensorDataset] = {}

    def load_splits(self) -> dict[str, Split]:
        """Returns ``{"train": (x, y), "val": (x, y), "test": (x, y)}`` as numpy arrays."""
        raise NotImplementedError

    @override
    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        for name, (x, y) in self.load_splits().items():
            self.splits[name] = TensorDataset(
                torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)
            )

    def _loader(self, split: str, shuffle: bool) -> DataLoader[Any]:
        return DataLoader(
            self.splits[split], batch_size=self.batch_size, shuffle=shuffle,
            num_workers=self.num_workers, persistent_workers=self.num_workers > 0,
            pin_memory=self.pin_memory,
        )

    @override
    def train_dataloader(self) -> DataLoader[Any]:
        return self._loader("train", shuffle=True)

    @override
    def val_dataloader(self) -> DataLoader[Any]:
        return self._loader("val", shuffle=False)

    @override
    def test_dataloader(self) -> DataLoader[Any]:
        return self._loader("test", shuffle=False)


class MNIST1DDataModule(ArrayDataModule):
    """MNIST-1D (Greydanus 2020): 4000 train / 1000 test sequences of length 40, 10 classes.

    Generated with ``mnist1d.data.make_dataset`` from its seed, cached once under ``data_dir``.
    A seeded ``val_fraction`` of the training set is held out for validation.

    Args:
        batch_size: Samples per batch on each worker.
        data_dir: Where the generated dataset is cached.
        seed: The dataset's generation seed (42 is the published dataset).
        val_fraction: Fraction of the 4000 training sequences held out for validation.
        num_workers: DataLoader worker processes.
        pin_memory: Page-locked batches, for faster copies to a GPU.
    """

    def __init__(
        self, batch_size: int = 64, data_dir: str | None = None, seed: int = 42,
        val_fraction: float = 0.1, num_workers: int = 0, pin_memory: bool = False,
    ) -> None:
        super().__init__(batch_size, data_dir, num_workers, pin_memory)
        if not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        self.seed = seed
        self.val_fraction = val_fraction

    @property
    def cache_file(self) -> Path:
        return self.data_dir / "mnist1d" / f"mnist1d_seed{self.seed}.npz"

    @override
    def prepare_data(self) -> None:
        if self.cache_file.exists():
            return
        # Imported here: mnist1d pulls in requests and is only needed to generate once.
        from mnist1d.data import get_dataset_args, make_dataset

        args = get_dataset_args()
        args.seed = self.seed
        data = make_dataset(args)  # procedural; get_dataset() would download instead
        logger.info("generated MNIST-1D (seed %d) into %s", self.seed, self.cache_file)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, x=data["x"], y=data["y"], x_test=data["x_test"], y_test=data["y_test"])

        _atomic_write(self.cache_file, write)

    @override
    def load_splits(self) -> dict[str, Split]:
        self.prepare_data()
        with np.load(self.cache_file) as d:
            x, y, x_test, y_test = d["x"], d["y"], d["x_test"], d["y_test"]
        train, val = _seeded_split(len(y), (1 - self.val_fraction, self.val_fraction), self.seed)
        return {"train": (x[train], y[train]), "val": (x[val], y[val]), "test": (x_test, y_test)}


class DigitsDataModule(ArrayDataModule):
    """scikit-learn's digits: 1797 real 8x8 handwritten digits, split 60/20/20 with a seed.

    Args:
        batch_size: Samples per batch on each worker.
        data_dir: Unused (the data ships with scikit-learn); accepted for a uniform interface.
        seed: Seed of the train/val/test split.
        num_workers: DataLoader worker processes.
        pin_memory: Page-locked batches, for faster copies to a GPU.
    """

    def __init__(
        self, batch_size: int = 64, data_dir: str | None = None, seed: int = 0,
        num_workers: int = 0, pin_memory: bool = False,
    ) -> None:
        super().__init__(batch_size, data_dir, num_workers, pin_memory)
        self.seed = seed

    @override
    def load_splits(self) -> dict[str, Split]:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = digits.images.astype(np.float32) / 16.0
        y = digits.target
        train, val, test = _seeded_split(len(y), (0.6, 0.2, 0.2), self.seed)
        return {"train": (x[train], y[train]), "val": (x[val], y[val]), "test": (x[test], y[test])}


class TorchvisionIdxDataModule(ArrayDataModule):
    """Base for torchvision's MNIST-format datasets, read from raw IDX files under ``data_dir``.

    torchvision looks for the uncompressed files in ``data_dir/<Dataset>/raw/``. They are put there
    from ``source_dir`` (compressed or not) when it has them, else downloaded if ``download`` is
    set; otherwise setup fails with an error that says how to get them.

    Args:
        batch_size: Samples per batch on each worker.
        data_dir: Root that holds ``<Dataset>/raw/``.
        download: Let torchvision download missing files (needs internet).
        source_dir: Directory with the IDX files (``.gz`` or not) to copy from.
        val_size: Training images held out (seeded) for validation.
        seed: Seed of the validation split.
        num_workers: DataLoader worker processes.
        pin_memory: Page-locked batches, for faster copies to a GPU.
    """

    dataset_name: ClassVar[str]
    default_source_dir: ClassVar[str | None] = None
    install_hint: ClassVar[str] = ""
    RAW_FILES: ClassVar[tuple[str, ...]] = (
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
    )

    def __init__(
        self, batch_size: int = 64, data_dir: str | None = None, download: bool = False,
        source_dir: str | None = None, val_size: int = 5000, seed: int = 0, num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(batch_size, data_dir, num_workers, pin_memory)
        self.download = download
        self.source_dir = Path(source_dir) if source_dir else (
            Path(self.default_source_dir) if self.default_source_dir else None
        )
        self.val_size = val_size
        self.seed = seed

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / self.dataset_name / "raw"

    def _missing(self) -> list[str]:
        return [f for f in self.RAW_FILES if not (self.raw_dir / f).exists()]

    def _copy_from_source(self, missing: list[str]) -> bool:
        if self.source_dir is None:
            return False
        found = {}
        for name in missing:
            for candidate in (self.source_dir / name, self.source_dir / f"{name}.gz"):
                if candidate.exists():
                    found[name] = candidate
                    break
        if len(found) < len(missing):
            return False
        for name, src in found.items():
            def write(tmp: Path, src: Path = src) -> None:
                opener: Any = gzip.open if src.suffix == ".gz" else open
                with opener(src, "rb") as fin, open(tmp, "wb") as fout:
                    shutil.copyfileobj(fin, fout)

            _atomic_write(self.raw_dir / name, write)
        logger.info("copied %s IDX files from %s to %s", self.dataset_name, self.source_dir,
                    self.raw_dir)
        return True

    @override
    def prepare_data(self) -> None:
        missing = self._missing()
        if not missing or self._copy_from_source(missing):
            return
        if self.download:
            self._torchvision_dataset(train=True, download=True)
            self._torchvision_dataset(train=False, download=True)
            return
        looked = f"{self.raw_dir}" + (f" and {self.source_dir}" if self.source_dir else "")
        raise FileNotFoundError(
            f"{self.dataset_name} files {', '.join(missing)} not found in {looked}. "
            f"Fix: {self.install_hint}pass download=True (datamodule_args: {{download: true}}) "
            "on a machine with internet, or point data_dir / source_dir at the IDX files."
        )

    def _torchvision_dataset(self, train: bool, download: bool = False) -> Any:
        import torchvision.datasets

        cls = getattr(torchvision.datasets, self.dataset_name)
        return cls(str(self.data_dir), train=train, download=download)

    @override
    def load_splits(self) -> dict[str, Split]:
        self.prepare_data()
        train_ds, test_ds = self._torchvision_dataset(True), self._torchvision_dataset(False)

        def arrays(ds: Any) -> Split:
            return (ds.data.numpy().astype(np.float32) / 255.0 - 0.5) / 0.5, ds.targets.numpy()

        (x, y), test = arrays(train_ds), arrays(test_ds)
        n = len(y)
        val_fraction = self.val_size / n
        train, val = _seeded_split(n, (1 - val_fraction, val_fraction), self.seed)
        return {"train": (x[train], y[train]), "val": (x[val], y[val]), "test": test}


class FashionMNISTDataModule(TorchvisionIdxDataModule):
    """Fashion-MNIST: 60000 train / 10000 test 28x28 grey images of clothes, 10 classes."""

    dataset_name = "FashionMNIST"
    default_source_dir = "/usr/share/datasets/fashion-mnist"
    install_hint = "install Debian's package (apt-get install dataset-fashion-mnist), or "


class MNISTDataModule(TorchvisionIdxDataModule):
    """MNIST: 60000 train / 10000 test 28x28 grey handwritten digits, 10 classes."""

    dataset_name = "MNIST"
