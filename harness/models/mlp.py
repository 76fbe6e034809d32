"""MLP (DC): flatten -> Linear(C*H*W, 128) -> ReLU -> Linear(128, 128) -> ReLU -> Linear(128, classes).

The input is the actual C*H*W (no padding of 28x28 images); ``embed`` is the second ReLU output.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.models.layers import EmbedNet
from harness.models.registry import MODELS


class MLP(EmbedNet):
    def __init__(self, channels: int, num_classes: int, image_size: tuple[int, int], width: int = 128):
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * image_size[0] * image_size[1], width),
            nn.ReLU(),
            nn.Linear(width, width),
            nn.ReLU(),
        )
        self.classifier = nn.Linear(width, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.body(x)
        return out


MODELS.register("mlp", MLP)
