"""The values population-based training chose are the values training uses, after a restore
from another trial's checkpoint (ray-project/ray#36660, #62173 are what happens otherwise)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from tuning.trial.explored import apply_group, explored_values_callback


class Net(pl.LightningModule):
    def __init__(self, lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 0.0,
                 step_gamma: float | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(4, 1)
        self.seen: list[dict[str, float]] = []  # each training step's optimizer values

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        group = self.trainer.optimizers[0].param_groups[0]
        self.seen.append({k: group[k] for k in ("lr", "momentum", "weight_decay")})
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.SGD(self.parameters(), lr=self.hparams.lr,
                                    momentum=self.hparams.momentum,
                                    weight_decay=self.hparams.weight_decay)
        if self.hparams.step_gamma is None:
            return optimizer
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1,
                                                    gamma=self.hparams.step_gamma)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


def _data() -> DataLoader[Any]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(16, 4, generator=generator)
    return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8)


def _trainer(epochs: int, callbacks: list[Any]) -> pl.Trainer:
    return pl.Trainer(max_epochs=epochs, accelerator="cpu", logger=False,
                      enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, callbacks=callbacks)


def _donor_checkpoint(tmp_path: Path, **hparams: Any) -> str:
    donor = Net(**hparams)
    trainer = _trainer(2, [])
    trainer.fit(donor, _data())
    path = (tmp_path / "donor.ckpt").as_posix()
    trainer.save_checkpoint(path)
    return path


@pytest.mark.parametrize("apply", [True, False])
def test_explored_optimizer_values_reach_the_optimizer(tmp_path: Path, apply: bool) -> None:
    checkpoint = _donor_checkpoint(tmp_path, lr=0.1, momentum=0.9, weight_decay=0.0)
    trial = Net(lr=0.01, momentum=0.5, weight_decay=1e-3)
    callback = explored_values_callback(pl)(apply=apply)
    _trainer(3, [callback]).fit(trial, _data(), ckpt_path=checkpoint)
    assert trial.hparams.lr == 0.01  # the module is built from the new values either way
    used = trial.seen[0]
    if apply:
        assert used == {"lr": 0.01, "momentum": 0.5, "weight_decay": 1e-3}
    else:  # Lightning alone restores the donor's optimizer values: the bug users meet
        assert used == {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.0}
    assert len(trial.seen) == 2, "one more epoch (two steps) after the donor's two"


def test_a_scheduled_learning_rate_keeps_its_place_in_the_schedule(tmp_path: Path) -> None:
    # The donor's StepLR halved its rate after each of its 2 epochs: 0.1 -> 0.025. The new
    # initial rate 0.04 continues at the same place: 0.04 * 0.25 = 0.01, then halves again.
    checkpoint = _donor_checkpoint(tmp_path, lr=0.1, step_gamma=0.5)
    trial = Net(lr=0.04, step_gamma=0.5)
    _trainer(4, [explored_values_callback(pl)(apply=True)]).fit(trial, _data(),
                                                                  ckpt_path=checkpoint)
    assert [round(s["lr"], 6) for s in trial.seen[::2]] == [0.01, 0.005]
    assert trial.trainer.lr_scheduler_configs[0].scheduler.base_lrs == [0.04]


def test_the_optimizers_values_are_logged_each_epoch(tmp_path: Path) -> None:
    trial = Net(lr=0.02)
    trainer = _trainer(1, [explored_values_callback(pl)(apply=False)])
    trainer.fit(trial, _data())
    assert trainer.callback_metrics["optimizer/lr"].item() == pytest.approx(0.02)
    assert trainer.callback_metrics["optimizer/momentum"].item() == pytest.approx(0.9)


def test_a_param_group_keeps_its_params_and_takes_every_other_value() -> None:
    saved = {"params": [0, 1], "lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-8}
    apply_group({"params": [5], "lr": 0.3, "betas": (0.8, 0.99), "eps": 1e-6}, saved)
    assert saved == {"params": [0, 1], "lr": 0.3, "betas": (0.8, 0.99), "eps": 1e-6}
