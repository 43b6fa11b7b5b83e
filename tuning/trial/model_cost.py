"""What a model costs, measured in every trial that names it, so the everyday trade-off of
accuracy against size or speed needs no code of the user's.

- ``model/params``: the LightningModule's parameter count (every parameter, trainable or not).
- ``model/latency_ms``: the median wall time of a forward pass on one sample, in milliseconds,
  on the trial's device, in eval mode without gradients: the latency of serving one request.
  The sample is the first of the epoch's first validation batch (its inputs: the first element
  of a tuple or list batch, as Lightning's docs write ``x, y = batch``).

Both are logged at each validation epoch's end, so they reach the epoch's report like any
metric the module logs; under DDP each rank measures and the mean is logged.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from tuning.config.spec import BUILTIN_METRICS
from tuning.errors import SweepError

PARAMS, LATENCY = BUILTIN_METRICS
WARMUP_PASSES = 3  # allocator and kernel selection: the first passes are slower
TIMED_PASSES = 15


def _one_sample(batch: Any) -> torch.Tensor:
    inputs = batch[0] if isinstance(batch, list | tuple) else batch
    if not isinstance(inputs, torch.Tensor):
        raise SweepError(
            f"{LATENCY}: the validation batch's inputs are a {type(inputs).__name__}; it is "
            "measured on a tensor, the first element of an (inputs, targets) batch. Fix: drop "
            f"{LATENCY} from metric and constraints, or log your own latency metric")
    return inputs[:1]


def latency_ms(module: Any, sample: torch.Tensor) -> float:
    """The median time of ``module(sample)`` in milliseconds (eval mode, no gradients)."""
    was_training = module.training
    module.eval()
    cuda = sample.device.type == "cuda"
    times = []
    try:
        with torch.inference_mode():
            for n in range(WARMUP_PASSES + TIMED_PASSES):
                if cuda:
                    torch.cuda.synchronize(sample.device)
                start = time.perf_counter()
                module(sample)
                if cuda:
                    torch.cuda.synchronize(sample.device)
                if n >= WARMUP_PASSES:
                    times.append(time.perf_counter() - start)
    finally:
        module.train(was_training)
    return 1000 * statistics.median(times)


class _ModelCost:
    """Logs the built-in metrics ``measure`` names at each validation epoch's end."""

    def __init__(self, measure: list[str]) -> None:
        super().__init__()
        self._measure = measure
        self._sample: torch.Tensor | None = None

    def on_validation_batch_start(self, trainer: Any, pl_module: Any, batch: Any,
                                  batch_idx: int, dataloader_idx: int = 0) -> None:
        if LATENCY in self._measure and batch_idx == 0 and dataloader_idx == 0:
            self._sample = _one_sample(batch)

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        if PARAMS in self._measure:
            count = sum(p.numel() for p in pl_module.parameters())
            pl_module.log(PARAMS, float(count), sync_dist=True)
        if LATENCY in self._measure and self._sample is not None:
            pl_module.log(LATENCY, latency_ms(pl_module, self._sample), sync_dist=True)


def model_cost_callback(pl: Any) -> type:
    """The callback class for the Lightning namespace ``pl``."""
    return type("ModelCost", (_ModelCost, pl.Callback), {"__module__": __name__})
