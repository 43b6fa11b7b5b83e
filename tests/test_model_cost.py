"""The built-in metrics: a model's parameter count and one sample's latency, from a real fit."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from lightning_modules import Classifier, DigitsDataModule
from tuning.errors import SweepError
from tuning.trial.model_cost import _one_sample, latency_ms, model_cost_callback


def _fit(measure: list[str]) -> tuple[Classifier, dict[str, float]]:
    model = Classifier(arch="mlp", input_shape=[8, 8], width=16, depth=1)
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_train_batches=2, limit_val_batches=2,
                         callbacks=[model_cost_callback(pl)(measure)])
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=32))
    return model, {k: float(v) for k, v in trainer.callback_metrics.items()}


def test_a_fit_logs_the_parameter_count_and_latency_with_its_metrics() -> None:
    model, metrics = _fit(["model/params", "model/latency_ms"])
    assert metrics["model/params"] == sum(p.numel() for p in model.parameters())
    assert 0 < metrics["model/latency_ms"] < 1000
    assert "val/acc" in metrics  # logged beside the module's own
    assert model.training  # measured in eval mode, and left as it was


def test_only_what_the_sweep_names_is_measured() -> None:
    _, metrics = _fit(["model/params"])
    assert "model/params" in metrics and "model/latency_ms" not in metrics


def test_latency_is_of_one_sample_of_the_batch_inputs() -> None:
    batch = (torch.randn(32, 8, 8), torch.zeros(32, dtype=torch.long))
    assert _one_sample(batch).shape == (1, 8, 8)
    calls: list[tuple[int, ...]] = []

    def forward(x: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(x.shape))
        return x

    module = torch.nn.Module()
    module.forward = forward  # type: ignore[method-assign]
    assert latency_ms(module, _one_sample(batch)) >= 0
    assert set(calls) == {(1, 8, 8)} and len(calls) > 1  # warm-up passes, then timed ones


def test_a_batch_without_tensor_inputs_is_refused_with_the_fix() -> None:
    with pytest.raises(SweepError, match=r"model/latency_ms: .* Fix: drop model/latency_ms"):
        _one_sample({"x": torch.randn(2, 3)})
