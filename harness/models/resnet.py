"""ResNets in the DC / CIFAR form: 3x3 stem conv (stride 1, padding 1, no bias) -> norm -> ReLU,
no stem max-pool, four stages (widths 64/128/256/512, strides 1/2/2/2), global average pool
(= ``embed``) -> Linear(512 * expansion, classes). Shortcuts are conv1x1 (+ norm) when the shape
changes.

``resnet18``: BasicBlock [2,2,2,2] with DC's "instancenorm" (GroupNorm(C, C, affine=True));
``resnet18-bn``: the same with BatchNorm2d; ``resnet152``: Bottleneck [3,8,36,3] (expansion 4,
stride on the 3x3 conv, torchvision widths) with BatchNorm2d. PyTorch default init throughout.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.models.layers import EmbedNet, make_norm
from harness.models.registry import MODELS


def _norm(name: str, c: int) -> nn.Module:
    n = make_norm(name, c)  # layernorm raises: ResNets have no fixed per-layer map size here
    return n if n is not None else nn.Identity()


def _shortcut(cin: int, cout: int, stride: int, norm: str) -> nn.Module:
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), _norm(norm, cout))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int, norm: str):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride=stride, padding=1, bias=False)
        self.norm1 = _norm(norm, planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.norm2 = _norm(norm, planes)
        self.relu = nn.ReLU()
        self.shortcut = _shortcut(cin, planes, stride, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        y: torch.Tensor = self.relu(out + self.shortcut(x))
        return y


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, norm: str):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.norm1 = _norm(norm, planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.norm2 = _norm(norm, planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.norm3 = _norm(norm, out)
        self.relu = nn.ReLU()
        self.shortcut = _shortcut(cin, out, stride, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.relu(self.norm2(self.conv2(out)))
        out = self.norm3(self.conv3(out))
        y: torch.Tensor = self.relu(out + self.shortcut(x))
        return y


class ResNet(EmbedNet):
    def __init__(
        self,
        channels: int,
        num_classes: int,
        image_size: tuple[int, int],
        block: type[BasicBlock] | type[Bottleneck] = BasicBlock,
        blocks: tuple[int, int, int, int] = (2, 2, 2, 2),
        norm: str = "instancenorm",
    ):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(channels, 64, 3, stride=1, padding=1, bias=False), _norm(norm, 64), nn.ReLU()
        )
        stages: list[nn.Module] = []
        cin = 64
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), blocks, strict=True)):
            layer = []
            for j in range(n):
                layer.append(block(cin, planes, 2 if i > 0 and j == 0 else 1, norm))
                cin = planes * block.expansion
            stages.append(nn.Sequential(*layer))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(cin, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        pooled: torch.Tensor = self.pool(self.stages(self.stem(x)))
        return pooled.flatten(1)


@MODELS.register("resnet18")
def resnet18(
    channels: int, num_classes: int, image_size: tuple[int, int], norm: str = "instancenorm"
) -> ResNet:
    return ResNet(channels, num_classes, image_size, BasicBlock, (2, 2, 2, 2), norm)


@MODELS.register("resnet18-bn")
def resnet18_bn(
    channels: int, num_classes: int, image_size: tuple[int, int], norm: str = "batchnorm"
) -> ResNet:
    return ResNet(channels, num_classes, image_size, BasicBlock, (2, 2, 2, 2), norm)


@MODELS.register("resnet152")
def resnet152(
    channels: int, num_classes: int, image_size: tuple[int, int], norm: str = "batchnorm"
) -> ResNet:
    return ResNet(channels, num_classes, image_size, Bottleneck, (3, 8, 36, 3), norm)
