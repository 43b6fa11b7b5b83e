"""Plain ``torch.nn`` networks, free of Lightning, so they can be reused and tested on their own."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn
from typing_extensions import override


class MLP(nn.Module):
    """A multilayer perceptron over flattened inputs.

    Args:
        in_features: Number of input features after flattening.
        num_classes: Number of output logits.
        width: Hidden units per layer.
        depth: Number of hidden layers.
        dropout: Dropout probability after each hidden layer.
    """

    def __init__(
        self, in_features: int, num_classes: int, width: int = 128, depth: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        features = in_features
        for _ in range(depth):
            layers += [nn.Linear(features, width), nn.ReLU(), nn.Dropout(dropout)]
            features = width
        layers.append(nn.Linear(features, num_classes))
        self.layers = nn.Sequential(*layers)

    @override
    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.layers(x)
        return out


class CNN1d(nn.Module):
    """A 1-D convolutional network for sequences such as MNIST-1D.

    Follows the MNIST-1D paper's CNN (strided 5-wide convolutions, then a linear read-out), with
    the width and depth exposed so they can be searched.

    Args:
        in_channels: Channels of the input sequence (1 for MNIST-1D).
        length: Length of the input sequence (40 for MNIST-1D).
        num_classes: Number of output logits.
        width: Channels of every convolution.
        depth: Number of convolutions; each halves the length.
        dropout: Dropout probability before the read-out.
    """

    def __init__(
        self, in_channels: int, length: int, num_classes: int, width: int = 32, depth: int = 3,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for _ in range(depth):
            layers += [nn.Conv1d(channels, width, kernel_size=5, stride=2, padding=2), nn.ReLU()]
            channels = width
            length = math.ceil(length / 2)
        layers += [nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels * length, num_classes)]
        self.layers = nn.Sequential(*layers)

    @override
    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:  # (batch, length): add the channel axis
            x = x.unsqueeze(1)
        out: Tensor = self.layers(x)
        return out


class CNN2d(nn.Module):
    """A small 2-D convolutional network for images such as 28x28 (Fashion-)MNIST or 8x8 digits.

    Args:
        in_channels: Image channels.
        height: Image height in pixels.
        width_px: Image width in pixels.
        num_classes: Number of output logits.
        width: Channels of the first convolution; doubled in the second.
        dropout: Dropout probability before the read-out.
    """

    def __init__(
        self, in_channels: int, height: int, width_px: int, num_classes: int, width: int = 32,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        # Pool only while the image is large enough to keep a spatial extent.
        pool_a = 2 if min(height, width_px) >= 8 else 1
        pool_b = 2 if min(height, width_px) // pool_a >= 8 else 1
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(pool_a),
            nn.Conv2d(width, 2 * width, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(pool_b),
        )
        out_h, out_w = height // pool_a // pool_b, width_px // pool_a // pool_b
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(2 * width * out_h * out_w, num_classes)
        )

    @override
    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 3:  # (batch, H, W): add the channel axis
            x = x.unsqueeze(1)
        out: Tensor = self.head(self.features(x))
        return out


ARCHITECTURES = ("mlp", "cnn1d", "cnn2d")


def build_net(
    arch: str, input_shape: Sequence[int], num_classes: int, width: int, depth: int, dropout: float
) -> nn.Module:
    """Builds one of :data:`ARCHITECTURES` for inputs of ``input_shape`` (without the batch axis).

    Raises:
        ValueError: For an unknown architecture or an input shape it cannot take.
    """
    shape = tuple(int(s) for s in input_shape)
    if arch == "mlp":
        return MLP(math.prod(shape), num_classes, width=width, depth=depth, dropout=dropout)
    if arch == "cnn1d":
        if len(shape) not in (1, 2):
            raise ValueError(f"cnn1d takes input_shape [length] or [channels, length], got {shape}")
        channels, length = (1, shape[0]) if len(shape) == 1 else shape
        return CNN1d(channels, length, num_classes, width=width, depth=depth, dropout=dropout)
    if arch == "cnn2d":
        if len(shape) not in (2, 3):
            raise ValueError(f"cnn2d takes input_shape [H, W] or [C, H, W], got {shape}")
        c, h, w = (1, *shape) if len(shape) == 2 else shape
        return CNN2d(c, h, w, num_classes, width=width, dropout=dropout)
    raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
