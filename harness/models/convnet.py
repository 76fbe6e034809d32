"""ConvNet, the DC / DC-Bench default network, and its depth/width/act/norm/pool variants.

``depth`` x [conv 3x3 (``width`` ch, padding 1) -> norm -> act -> pool 2x2] -> flatten -> Linear.
On 1-channel input the first conv pads 3, at every size, as the DC code's ConvNet does (MNIST
28 -> 32, so its spatial arithmetic is the 32 px one; digits 8 -> 12 -> 6 -> 3 -> 1). Padding 1 at
8x8 would leave the last norm layer 2x2 pixels to normalise, which makes gradient matching
ill-conditioned (DC's loss rises and its sets end below random). Without a fixed depth it is 3
for <= 32 px, 4 for <= 64 px, 5 above.

Name grammar (case-insensitive), parsed by :func:`parse_convnet_name`::

    convnet[-OPT]...       each option family at most once, in any order
    OPT := d<N>                         depth N (>= 1)
         | w<N>                         width N (>= 1)
         | relu | sigmoid | leakyrelu | swish            activation
         | nn | bn | ln | in | gn       norm none/batch/layer/instance/group(4)
         | np | mp | ap                 pool none/max/avg

e.g. ``convnet-d4-w64-bn-mp``. The common variants are registered by name; any other valid
combination is accepted by ``create_model`` through the parser.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from dcregistry.errors import UnknownNameError
from harness.models.layers import (
    ACTIVATIONS,
    NORMS,
    POOLS,
    EmbedNet,
    ModelConfigError,
    check_choice,
    conv_hw,
    make_act,
    make_norm,
    make_pool,
    require_hw,
)
from harness.models.registry import MODELS

NORM_CODES = {"nn": "none", "bn": "batchnorm", "ln": "layernorm", "in": "instancenorm", "gn": "groupnorm"}
POOL_CODES = {"np": "none", "mp": "max", "ap": "avg"}


@dataclass(frozen=True)
class ConvNetConfig:
    """Architecture options of a ConvNet (input geometry is given separately)."""

    depth: int | None = None  # None: 3 for <= 32 px, 4 for <= 64 px, 5 above
    width: int = 128
    act: str = "relu"  # relu | sigmoid | leakyrelu | swish
    norm: str = "instancenorm"  # none | batchnorm | layernorm | instancenorm | groupnorm
    pool: str = "avg"  # none | max | avg

    def __post_init__(self) -> None:
        if self.depth is not None and (not isinstance(self.depth, int) or self.depth < 1):
            raise ModelConfigError(f"convnet depth must be a positive int, got {self.depth!r}")
        if not isinstance(self.width, int) or self.width < 1:
            raise ModelConfigError(f"convnet width must be a positive int, got {self.width!r}")
        check_choice("activation", self.act, ACTIVATIONS)
        check_choice("norm", self.norm, NORMS)
        check_choice("pool", self.pool, POOLS)

    def depth_for(self, image_size: tuple[int, int]) -> int:
        """The depth used for this input size."""
        if self.depth is not None:
            return self.depth
        side = max(image_size)
        return 3 if side <= 32 else 4 if side <= 64 else 5


class ConvNet(EmbedNet):
    """``features`` (conv/norm/act/pool blocks) -> flatten (= ``embed``) -> ``classifier``."""

    def __init__(
        self,
        channels: int,
        num_classes: int,
        image_size: tuple[int, int],
        config: ConvNetConfig = ConvNetConfig(),
    ):
        super().__init__()
        self.config = config
        depth = config.depth_for(image_size)
        pool_name = config.pool
        layers: list[nn.Module] = []
        hw = image_size
        cin = channels
        for d in range(depth):
            pad = 3 if d == 0 and channels == 1 else 1
            layers.append(nn.Conv2d(cin, config.width, kernel_size=3, padding=pad))
            hw = conv_hw(hw, 3, pad)
            norm = make_norm(config.norm, config.width, hw)
            if norm is not None:
                layers.append(norm)
            layers.append(make_act(config.act))
            pool = make_pool(pool_name)
            if pool is not None:
                layers.append(pool)
                hw = conv_hw(hw, 2, 0, 2)
                require_hw(hw, "convnet", image_size, f"depth {depth} with 2x2 pooling")
            cin = config.width
        self.features = nn.Sequential(*layers)
        self.feature_hw = hw
        self.classifier = nn.Linear(config.width * hw[0] * hw[1], num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        features: torch.Tensor = self.features(x)
        return features.flatten(1)


def parse_convnet_name(name: str) -> ConvNetConfig:
    """``convnet-d4-w64-bn-mp`` -> ConvNetConfig(depth=4, width=64, norm=batchnorm, pool=max).

    Raises UnknownNameError naming the bad or repeated option.
    """
    parts = name.lower().split("-")
    if parts[0] != "convnet":
        raise UnknownNameError(f"unknown model {name!r}: a ConvNet name starts with 'convnet'")
    fields: dict[str, object] = {}

    def put(field: str, value: object, opt: str) -> None:
        if field in fields:
            raise UnknownNameError(f"model {name!r}: option {opt!r} sets {field} a second time")
        fields[field] = value

    for opt in parts[1:]:
        m = re.fullmatch(r"([dw])(\d+)", opt)
        if m and int(m.group(2)) >= 1:
            put("depth" if m.group(1) == "d" else "width", int(m.group(2)), opt)
        elif opt in ACTIVATIONS:
            put("act", opt, opt)
        elif opt in NORM_CODES:
            put("norm", NORM_CODES[opt], opt)
        elif opt in POOL_CODES:
            put("pool", POOL_CODES[opt], opt)
        else:
            raise UnknownNameError(
                f"model {name!r}: unknown ConvNet option {opt!r} (options: d<N>, w<N>, "
                f"{', '.join(ACTIVATIONS)}, {', '.join(NORM_CODES)}, {', '.join(POOL_CODES)})"
            )
    return ConvNetConfig(**fields)  # type: ignore[arg-type]


def convnet_factory(config: ConvNetConfig = ConvNetConfig()) -> Callable[..., ConvNet]:
    """A model factory for ``config``; keyword overrides replace config fields."""

    def build(channels: int, num_classes: int, image_size: tuple[int, int], **overrides) -> ConvNet:
        bad = set(overrides) - {f.name for f in dataclasses.fields(ConvNetConfig)}
        if bad:
            raise TypeError(f"convnet got unknown overrides {sorted(bad)}")
        return ConvNet(channels, num_classes, image_size, dataclasses.replace(config, **overrides))

    build.config = config  # type: ignore[attr-defined]
    return build


MODELS.register("convnet", convnet_factory(ConvNetConfig()))
MODELS.register("convnet-d1", convnet_factory(ConvNetConfig(depth=1)))
MODELS.register("convnet-d2", convnet_factory(ConvNetConfig(depth=2)))
MODELS.register("convnet-d3", convnet_factory(ConvNetConfig(depth=3)))
MODELS.register("convnet-d4", convnet_factory(ConvNetConfig(depth=4)))
MODELS.register("convnet-d5", convnet_factory(ConvNetConfig(depth=5)))
MODELS.register("convnet-w32", convnet_factory(ConvNetConfig(width=32)))
MODELS.register("convnet-w64", convnet_factory(ConvNetConfig(width=64)))
MODELS.register("convnet-w128", convnet_factory(ConvNetConfig(width=128)))
MODELS.register("convnet-w256", convnet_factory(ConvNetConfig(width=256)))
MODELS.register("convnet-relu", convnet_factory(ConvNetConfig(act="relu")))
MODELS.register("convnet-sigmoid", convnet_factory(ConvNetConfig(act="sigmoid")))
MODELS.register("convnet-leakyrelu", convnet_factory(ConvNetConfig(act="leakyrelu")))
MODELS.register("convnet-swish", convnet_factory(ConvNetConfig(act="swish")))
MODELS.register("convnet-nn", convnet_factory(ConvNetConfig(norm="none")))
MODELS.register("convnet-bn", convnet_factory(ConvNetConfig(norm="batchnorm")))
MODELS.register("convnet-ln", convnet_factory(ConvNetConfig(norm="layernorm")))
MODELS.register("convnet-in", convnet_factory(ConvNetConfig(norm="instancenorm")))
MODELS.register("convnet-gn", convnet_factory(ConvNetConfig(norm="groupnorm")))
MODELS.register("convnet-np", convnet_factory(ConvNetConfig(pool="none")))
MODELS.register("convnet-mp", convnet_factory(ConvNetConfig(pool="max")))
MODELS.register("convnet-ap", convnet_factory(ConvNetConfig(pool="avg")))
