"""The model registry: every network family registers its canonical names here, one line each."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from harness.registry import Registry

#: canonical name -> ``factory(channels, num_classes, image_size, **overrides) -> nn.Module``.
MODELS: Registry[Callable[..., nn.Module]] = Registry("model")
