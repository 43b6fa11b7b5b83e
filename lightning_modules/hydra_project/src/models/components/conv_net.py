"""A small 1-D convolutional network for MNIST-1D sequences."""

from __future__ import annotations

from torch import Tensor, nn


class ConvNet(nn.Module):
    """Strided 1-D convolutions, then a linear read-out.

    Args:
        length: Length of the input sequence.
        channels: Channels of every convolution.
        depth: Convolutions; each halves the length.
        num_classes: Output logits.
    """

    def __init__(self, length: int = 40, channels: int = 32, depth: int = 3,
                 num_classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 1
        for _ in range(depth):
            layers += [nn.Conv1d(in_channels, channels, 5, stride=2, padding=2), nn.ReLU()]
            in_channels, length = channels, (length + 1) // 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels * length, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.head(self.features(x.unsqueeze(1)).flatten(1))
        return out
