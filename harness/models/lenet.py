"""LeNet (DC): conv6@5x5 (pad 2 for 1 channel, else 0) -> ReLU -> maxpool 2 -> conv16@5x5 -> ReLU
-> maxpool 2 -> Linear(16*s*s, 120) -> ReLU -> Linear(120, 84) -> ReLU -> Linear(84, classes).

``s`` follows from the input (5 for 3x32x32 and for 1x28x28); ``embed`` is the 84-d layer.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.models.layers import EmbedNet, conv_hw, require_hw
from harness.models.registry import MODELS


class LeNet(EmbedNet):
    def __init__(self, channels: int, num_classes: int, image_size: tuple[int, int]):
        super().__init__()
        pad = 2 if channels == 1 else 0
        hw = conv_hw(image_size, 5, pad)
        require_hw(hw, "lenet", image_size, "the first 5x5 conv")
        hw = conv_hw(conv_hw(hw, 2, 0, 2), 5)
        require_hw(hw, "lenet", image_size, "the second 5x5 conv")
        hw = conv_hw(hw, 2, 0, 2)
        require_hw(hw, "lenet", image_size, "the second pool")
        self.features = nn.Sequential(
            nn.Conv2d(channels, 6, kernel_size=5, padding=pad),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(6, 16, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
        )
        self.fc = nn.Sequential(
            nn.Linear(16 * hw[0] * hw[1], 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
        )
        self.classifier = nn.Linear(84, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc(self.features(x).flatten(1))
        return out


MODELS.register("lenet", LeNet)
