"""VGG11 (DC): [64,M,128,M,256,256,M,512,512,M,512,512,M] with conv 3x3 pad 1 -> norm -> ReLU, M =
maxpool 2, then Linear(512*s*s, classes) where s is the remaining spatial size (1 for 32 px).

The first conv pads 3 on 1-channel input at every size, as DC's VGG does (28 -> 32). Norm is DC's "instancenorm"
(GroupNorm(C, C)) for ``vgg11`` and BatchNorm2d for ``vgg11-bn``. ``embed`` = flattened features.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.models.layers import EmbedNet, conv_hw, make_norm, require_hw
from harness.models.registry import MODELS

VGG11_CFG: tuple[int | str, ...] = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class VGG(EmbedNet):
    def __init__(
        self,
        channels: int,
        num_classes: int,
        image_size: tuple[int, int],
        cfg: tuple[int | str, ...] = VGG11_CFG,
        norm: str = "instancenorm",
    ):
        super().__init__()
        layers: list[nn.Module] = []
        hw = image_size
        cin = channels
        pools = 0
        for i, v in enumerate(cfg):
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
                hw = conv_hw(hw, 2, 0, 2)
                pools += 1
                require_hw(hw, "vgg", image_size, f"{pools} 2x2 max-pools")
                continue
            pad = 3 if i == 0 and channels == 1 else 1
            layers.append(nn.Conv2d(cin, int(v), kernel_size=3, padding=pad))
            hw = conv_hw(hw, 3, pad)
            n = make_norm(norm, int(v), hw)
            if n is not None:
                layers.append(n)
            layers.append(nn.ReLU())
            cin = int(v)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(cin * hw[0] * hw[1], num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        features: torch.Tensor = self.features(x)
        return features.flatten(1)


@MODELS.register("vgg11")
def vgg11(channels: int, num_classes: int, image_size: tuple[int, int], norm: str = "instancenorm") -> VGG:
    return VGG(channels, num_classes, image_size, VGG11_CFG, norm)


@MODELS.register("vgg11-bn")
def vgg11_bn(channels: int, num_classes: int, image_size: tuple[int, int], norm: str = "batchnorm") -> VGG:
    return VGG(channels, num_classes, image_size, VGG11_CFG, norm)
