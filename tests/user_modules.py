"""User modules that misbehave on purpose, importable by Ray workers as ``tests.user_modules``."""

from __future__ import annotations

from typing import Any

from lightning_modules import Classifier


class Exploding(Classifier):
    """Raises in training above a learning rate, as a NaN check in user code would."""

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        if self.hparams.lr > 0.05:
            raise FloatingPointError(f"loss is nan (lr={self.hparams.lr:.3f})")
        return super().training_step(batch, batch_idx)
