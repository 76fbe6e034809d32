"""Building blocks shared by the model zoo: norm / activation / pool factories, shape arithmetic
and the :class:`EmbedNet` base class (``forward(x) == classifier(embed(x))``)."""

from __future__ import annotations

import operator

import torch
from torch import nn

from dcregistry.errors import UnknownNameError, UserError

ACTIVATIONS = ("relu", "sigmoid", "leakyrelu", "swish")
NORMS = ("none", "batchnorm", "layernorm", "instancenorm", "groupnorm")
POOLS = ("none", "max", "avg")


class ModelConfigError(UserError, ValueError):
    """A network cannot be built with these options for this input shape (e.g. too deep for 8x8)."""


def check_choice(kind: str, value: str, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise UnknownNameError naming it."""
    if value not in choices:
        raise UnknownNameError(f"unknown {kind} {value!r} (known: {', '.join(choices)})")
    return value


def make_act(name: str) -> nn.Module:
    """``relu`` | ``sigmoid`` | ``leakyrelu`` (slope 0.01) | ``swish`` (x * sigmoid(x))."""
    check_choice("activation", name, ACTIVATIONS)
    if name == "relu":
        return nn.ReLU()
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "leakyrelu":
        return nn.LeakyReLU(negative_slope=0.01)
    return nn.SiLU()


def make_norm(name: str, channels: int, hw: tuple[int, int] | None = None) -> nn.Module | None:
    """A 2-d feature-map norm, or None for ``none``.

    ``instancenorm`` is ``GroupNorm(C, C, affine=True)`` (DC's choice, per-sample so it works on
    a batch of one), ``groupnorm`` is ``GroupNorm(4, C)``, ``layernorm`` is
    ``LayerNorm([C, H, W])`` (normalises and scales over C, H, W, so it needs ``hw``),
    ``batchnorm`` is ``BatchNorm2d(C)``.
    """
    check_choice("norm", name, NORMS)
    if name == "none":
        return None
    if name == "batchnorm":
        return nn.BatchNorm2d(channels)
    if name == "instancenorm":
        return nn.GroupNorm(channels, channels, affine=True)
    if name == "groupnorm":
        if channels % 4:
            raise ModelConfigError(f"groupnorm uses 4 groups; {channels} channels do not divide by 4")
        return nn.GroupNorm(4, channels, affine=True)
    if hw is None:
        raise ModelConfigError("layernorm needs a fixed feature-map size; this network has none")
    return nn.LayerNorm([channels, hw[0], hw[1]])


def make_pool(name: str) -> nn.Module | None:
    """``avg`` / ``max`` 2x2 stride-2 pooling, or None for ``none``."""
    check_choice("pool", name, POOLS)
    if name == "none":
        return None
    return nn.AvgPool2d(2, 2) if name == "avg" else nn.MaxPool2d(2, 2)


def to_hw(image_size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``32`` -> ``(32, 32)``; ``(H, W)`` unchanged; anything else or non-positive -> error."""
    try:
        # int-like (also numpy integers); a sequence raises TypeError, handled below
        side = operator.index(image_size)  # type: ignore[arg-type]
        hw: tuple[int, ...] = (side, side)
    except TypeError:
        try:
            hw = tuple(operator.index(v) for v in image_size)  # type: ignore[union-attr]
        except TypeError:
            hw = ()
        if len(hw) != 2:
            raise ModelConfigError(f"image_size must be an int or (H, W), got {image_size!r}") from None
    if min(hw) < 1:
        raise ModelConfigError(f"image_size must be positive, got {image_size!r}")
    return hw  # type: ignore[return-value]


def conv_hw(hw: tuple[int, int], kernel: int, padding: int = 0, stride: int = 1) -> tuple[int, int]:
    """Spatial size after a conv (or floor-mode pool) with these settings."""
    return tuple((n + 2 * padding - kernel) // stride + 1 for n in hw)  # type: ignore[return-value]


def require_hw(hw: tuple[int, int], model: str, image_size: tuple[int, int], where: str) -> None:
    """Raise ModelConfigError if a feature map has shrunk to nothing."""
    if min(hw) < 1:
        raise ModelConfigError(
            f"{model}: input {image_size[0]}x{image_size[1]} is too small ({where} leaves "
            f"{hw[0]}x{hw[1]}); use a shallower variant or resize the images"
        )


class EmbedNet(nn.Module):
    """Base class: subclasses define ``embed(x) -> [N, D]`` and ``self.classifier`` (nn.Linear)."""

    classifier: nn.Linear

    def embed(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.classifier(self.embed(x))
        return logits

    @property
    def embed_dim(self) -> int:
        """D, the width of ``embed(x)``."""
        return self.classifier.in_features
