"""``python -m lightning_modules.injected fit --config lightning_modules/injected/config.yaml``:
the project's own LightningCLI entry point, as its users run it without lightsweep."""

from lightning.pytorch.cli import LightningCLI

from lightning_modules.datamodules import MNIST1DDataModule
from lightning_modules.injected.model import InjectedClassifier


def main() -> None:
    LightningCLI(InjectedClassifier, MNIST1DDataModule)


if __name__ == "__main__":
    main()
