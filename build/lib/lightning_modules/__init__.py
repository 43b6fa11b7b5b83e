"""Ready-made models and offline data sources for lightsweep sweeps.

Plain ``nn.Module`` networks live in :mod:`lightning_modules.nets`, the LightningModule that trains
them in :mod:`lightning_modules.classifier`, and LightningDataModules in
:mod:`lightning_modules.datamodules`. A sweep file names them as ``package.module:ClassName``.
"""

from lightning_modules.classifier import Classifier
from lightning_modules.datamodules import (
    DigitsDataModule,
    FashionMNISTDataModule,
    MNIST1DDataModule,
    MNISTDataModule,
)

__all__ = [
    "Classifier",
    "DigitsDataModule",
    "FashionMNISTDataModule",
    "MNIST1DDataModule",
    "MNISTDataModule",
]
