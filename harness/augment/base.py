"""The augmentation interface and clipping bookkeeping.

An :class:`Augmentation` maps a float batch ``[N, C, H, W]`` to a batch of the same shape, in the
same pixel space, drawing every random number from an explicit CPU ``torch.Generator``: the same
generator state gives the same output, on CPU and on CUDA (parameters are sampled on the CPU and
then moved to ``x.device``). No augmentation touches torch's global RNG state, or, where a
third-party transform needs it (torchvision), restores it afterwards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from .registry import AUGMENTATIONS

if TYPE_CHECKING:
    from harness.data.pixelspace import TensorSpace


def check_generator(generator: torch.Generator) -> None:
    """Augmentations draw from an explicit CPU generator; reject anything else early."""
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"augmentations need an explicit torch.Generator, got {type(generator).__name__}")
    if generator.device.type != "cpu":
        raise ValueError(
            f"augmentations draw their parameters on the CPU; pass a CPU torch.Generator "
            f"(got one on {generator.device}), whatever device the images are on"
        )


def check_images(x: Tensor) -> None:
    if not isinstance(x, Tensor) or x.dim() != 4 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        dtype = x.dtype if isinstance(x, Tensor) else None
        raise ValueError(f"augmentations take a float batch [N, C, H, W]; got {shape} {dtype}")


class Augmentation:
    """Base class. Subclasses implement :meth:`_apply`; callers use ``aug(x, generator)``.

    Attributes:
        name: the registry name.
        clips: whether this augmentation may clamp pixels to [0, 1] in unit space (the
            torchvision-based ones do; DSA, DC and ``none`` never do).
        needs_unit_range: whether it works on [0, 1] images (mapped there and back through the
            pixel space), so that it cannot run on a space that does not map back exactly (ZCA).

    Clipping bookkeeping (for the result record): ``clipped`` becomes True once a call actually
    clamped at least one out-of-[0, 1] unit-space pixel; ``clipped_pixels`` counts them over all
    calls, ``clipped_calls`` counts the calls that clamped anything, ``last_clipped_pixels`` is the
    count of the latest call. Counts are kept as device tensors and only synchronised when read.
    """

    name: str = "augmentation"
    clips: bool = False
    needs_unit_range: bool = False

    # clipping bookkeeping, set by reset_clipping() and __call__
    _clipped_pixels: Tensor
    _clipped_calls: Tensor
    _last_clipped: Tensor | None
    _call_clipped: Tensor | None

    def __init__(self) -> None:
        self.reset_clipping()

    @classmethod
    def create(
        cls, *, strategy: str | None = None, space: TensorSpace | None = None, image_size: int | None = None
    ) -> Augmentation:
        """Build from the options of ``create_augmentation``; subclasses take what they use."""
        return cls()

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        check_images(x)
        check_generator(generator)
        self._call_clipped = None
        out = self._apply(x, generator)
        call = self._call_clipped
        if call is not None:
            # accumulate on the batch's device: no host sync until a count is read
            self._clipped_pixels = self._clipped_pixels.to(call.device) + call
            self._clipped_calls = self._clipped_calls.to(call.device) + (call > 0).long()
        self._last_clipped = call
        return out

    def _apply(self, x: Tensor, generator: torch.Generator) -> Tensor:
        raise NotImplementedError

    # --- clipping bookkeeping -------------------------------------------------------------
    def reset_clipping(self) -> None:
        """Zero the clipping counters."""
        self._clipped_pixels = torch.zeros((), dtype=torch.long)
        self._clipped_calls = torch.zeros((), dtype=torch.long)
        self._last_clipped = None
        self._call_clipped = None

    def _count_and_clamp(self, u: Tensor) -> Tensor:
        """Clamp unit-space pixels to [0, 1], counting those that were outside."""
        outside = ((u < 0) | (u > 1)).sum()
        self._call_clipped = outside if self._call_clipped is None else self._call_clipped + outside
        return u.clamp(0.0, 1.0)

    @property
    def clipped_pixels(self) -> int:
        return int(self._clipped_pixels)

    @property
    def clipped_calls(self) -> int:
        return int(self._clipped_calls)

    @property
    def last_clipped_pixels(self) -> int:
        return 0 if self._last_clipped is None else int(self._last_clipped)

    @property
    def clipped(self) -> bool:
        return self.clipped_pixels > 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class Identity(Augmentation):
    """``none``: returns ``x`` itself, unchanged."""

    name = "none"

    def _apply(self, x: Tensor, generator: torch.Generator) -> Tensor:
        return x


AUGMENTATIONS.register("none", Identity)
