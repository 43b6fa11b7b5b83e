"""Offline DataModules over real data: splits, determinism, and missing-file errors."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_modules.datamodules import (
    DigitsDataModule,
    FashionMNISTDataModule,
    MNIST1DDataModule,
    MNISTDataModule,
)

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def test_mnist1d_is_generated_offline_seeded_and_cached(tmp_path: Path) -> None:
    dm = MNIST1DDataModule(batch_size=50, data_dir=str(tmp_path))
    dm.setup()
    sizes = {k: len(v) for k, v in dm.splits.items()}
    assert sizes == {"train": 3600, "val": 400, "test": 1000}
    assert dm.cache_file.is_file()
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (50, 40) and y.dtype == torch.long
    assert set(torch.unique(dm.splits["test"].tensors[1]).tolist()) == set(range(10))

    again = MNIST1DDataModule(batch_size=50, data_dir=str(tmp_path))
    again.setup()
    assert torch.equal(again.splits["val"].tensors[0], dm.splits["val"].tensors[0])
    assert not list(tmp_path.rglob("*.tmp")), "no half-written file is left"


def test_digits_split_is_disjoint_and_complete() -> None:
    dm = DigitsDataModule(batch_size=16, seed=3)
    dm.setup()
    sizes = [len(dm.splits[s]) for s in ("train", "val", "test")]
    assert sum(sizes) == 1797
    flat = [dm.splits[s].tensors[0].reshape(len(dm.splits[s]), -1) for s in ("train", "val")]
    assert flat[0].shape[1] == 64
    assert dm.splits["train"].tensors[0].max() <= 1.0


def test_nonpositive_batch_size_is_refused() -> None:
    with pytest.raises(ValueError, match="batch_size must be positive"):
        DigitsDataModule(batch_size=0)


def test_missing_idx_files_error_names_the_fixes(tmp_path: Path) -> None:
    dm = FashionMNISTDataModule(data_dir=str(tmp_path / "data"), source_dir=str(tmp_path / "none"))
    with pytest.raises(FileNotFoundError) as info:
        dm.setup()
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "download=True" in message
    with pytest.raises(FileNotFoundError, match="download=True"):
        MNISTDataModule(data_dir=str(tmp_path / "data")).setup()


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist not installed")
def test_fashion_mnist_from_debian_package(tmp_path: Path) -> None:
    dm = FashionMNISTDataModule(batch_size=64, data_dir=str(tmp_path))
    dm.setup()
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 55000, "val": 5000,
                                                        "test": 10000}
    assert dm.splits["train"].tensors[0].shape[1:] == (28, 28)
    assert (tmp_path / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").is_file()


def _write_idx(directory: Path, n_train: int = 60, n_test: int = 20) -> None:
    """Writes real IDX-format files (the format torchvision reads) with random pixels."""
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        header_i = np.array([0x0803, n, 28, 28], dtype=">i4").tobytes()
        header_l = np.array([0x0801, n], dtype=">i4").tobytes()
        with gzip.open(directory / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(header_i + images.tobytes())
        with gzip.open(directory / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(header_l + labels.tobytes())


def test_download_flag_hands_over_to_torchvision(tmp_path: Path, monkeypatch) -> None:
    """download=True asks torchvision to fetch the files (no network here: its fetch is replaced
    by one that serves IDX files from disk), then reads them like any other."""
    import torchvision.datasets

    source = tmp_path / "served"
    _write_idx(source)
    calls = []

    def fake_download(self) -> None:
        calls.append(type(self).__name__)
        raw = Path(self.raw_folder)
        raw.mkdir(parents=True, exist_ok=True)
        for gz in source.glob("*.gz"):
            with gzip.open(gz, "rb") as fin, open(raw / gz.stem, "wb") as fout:
                shutil.copyfileobj(fin, fout)

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", fake_download)
    dm = MNISTDataModule(batch_size=8, data_dir=str(tmp_path / "data"), download=True, val_size=10)
    dm.setup()
    assert calls, "torchvision's download was asked for"
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 50, "val": 10, "test": 20}


def test_source_dir_with_gzipped_idx_files_is_used(tmp_path: Path) -> None:
    _write_idx(tmp_path / "src")
    dm = MNISTDataModule(batch_size=8, data_dir=str(tmp_path / "data"),
                         source_dir=str(tmp_path / "src"), val_size=10)
    dm.setup()
    assert len(dm.splits["test"]) == 20
