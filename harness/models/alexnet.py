"""AlexNet, the CIFAR variant used by DC:

conv128@5 (pad 4 for 1 channel, else 2) -> ReLU -> maxpool 2 -> conv192@5 pad 2 -> ReLU ->
maxpool 2 -> conv256@3 pad 1 -> ReLU -> conv192@3 pad 1 -> ReLU -> conv192@3 pad 1 -> ReLU ->
maxpool 2 -> Linear(192*s*s, classes)   (s = 4 for 32x32 and 1x28x28). ``embed`` = flattened
features.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.models.layers import EmbedNet, conv_hw, require_hw
from harness.models.registry import MODELS


class AlexNet(EmbedNet):
    def __init__(self, channels: int, num_classes: int, image_size: tuple[int, int]):
        super().__init__()
        pad = 4 if channels == 1 else 2
        hw = conv_hw(image_size, 5, pad)
        for _ in range(3):  # three 2x2 max pools; the 3x3 / 5x5 'same' convs keep the size
            hw = conv_hw(hw, 2, 0, 2)
        require_hw(hw, "alexnet", image_size, "three 2x2 pools")
        self.features = nn.Sequential(
            nn.Conv2d(channels, 128, kernel_size=5, padding=pad),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(128, 192, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(192, 256, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(256, 192, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(192, 192, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
        )
        self.classifier = nn.Linear(192 * hw[0] * hw[1], num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        features: torch.Tensor = self.features(x)
        return features.flatten(1)


MODELS.register("alexnet", AlexNet)
