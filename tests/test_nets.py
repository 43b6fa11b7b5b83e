"""Plain networks: output shapes for the inputs each architecture takes."""

from __future__ import annotations

import pytest
import torch

from lightning_modules.nets import build_net


@pytest.mark.parametrize(
    ("arch", "shape", "batch"),
    [
        ("mlp", [40], (5, 40)),
        ("mlp", [8, 8], (5, 8, 8)),
        ("cnn1d", [40], (5, 40)),
        ("cnn1d", [1, 40], (5, 1, 40)),
        ("cnn2d", [28, 28], (5, 28, 28)),
        ("cnn2d", [8, 8], (5, 8, 8)),
        ("cnn2d", [3, 32, 32], (5, 3, 32, 32)),
    ],
)
def test_logits_per_class(arch: str, shape: list[int], batch: tuple[int, ...]) -> None:
    net = build_net(arch, shape, num_classes=10, width=8, depth=2, dropout=0.1)
    assert net(torch.randn(*batch)).shape == (5, 10)


def test_unknown_arch_and_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown arch 'rnn'"):
        build_net("rnn", [40], 10, 8, 1, 0.0)
    with pytest.raises(ValueError, match="cnn1d takes input_shape"):
        build_net("cnn1d", [1, 2, 3], 10, 8, 1, 0.0)
