"""A Lightning project written the way LightningCLI's documentation teaches dependency injection:
the LightningModule takes its network and its optimizer as objects, its settings live in a
LightningCLI ``config.yaml``. lightsweep tunes it from that config unchanged
(``search_spaces/mnist1d_lightning_cli.yaml``); it also runs on its own::

    python -m lightning_modules.injected fit --config lightning_modules/injected/config.yaml
"""

from lightning_modules.injected.model import InjectedClassifier

__all__ = ["InjectedClassifier"]
