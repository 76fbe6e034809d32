"""``dc``: the "DC augmentation" DC used to evaluate its MNIST sets, batched and without scipy.

Per image, ONE op is drawn uniformly from ``ops`` (default crop, scale, rotate):

* crop: pad by 4 with the fill value, crop back to H x W at a random integer offset, i.e. a
  shift ``ty, tx ~ U{-4..4}`` (DC drew ``U{-4..3}``, an off-by-one we do not copy);
* scale: resize by ``fy, fx ~ U(0.8, 1.2)`` (drawn independently, as DC did) about the centre;
* rotate: by ``U(-45°, 45°)`` about the centre (DC: integer degrees in ``[-45, 44]``).

Fill value: the per-channel mean over the batch, like DC (``fill="batch"``; ``fill="image"``
uses each image's own channel means, which makes an image's result independent of its batch).
DC padded scale's border with 0 and rotated with scipy's cubic spline and the mean of the
channel means; here scale and rotate use an affine grid with bilinear sampling and the channel
mean as fill for all three ops (the same thing on 1-channel MNIST up to interpolation; in
normalized space 0 and the batch mean are close anyway). Works in any pixel space (every op
commutes with a per-channel affine map), never clips; differentiable in ``x``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from .base import Augmentation
from .dsa import affine, translate
from .registry import AUGMENTATIONS

if TYPE_CHECKING:
    from harness.data.pixelspace import TensorSpace

DC_OPS = ("crop", "scale", "rotate")


class DCAugmentation(Augmentation):
    name = "dc"
    clips = False

    def __init__(
        self,
        ops: tuple[str, ...] | str = DC_OPS,
        crop: int = 4,
        scale: float = 0.2,
        rotate: float = 45.0,
        fill: str = "batch",
    ):
        super().__init__()
        if isinstance(ops, str):
            ops = tuple(p for p in ops.split("_") if p)
        bad = [o for o in ops if o not in DC_OPS]
        if bad or not ops:
            raise ValueError(f"dc augmentation ops must be a non-empty subset of {DC_OPS}, got {ops}")
        if fill not in ("batch", "image"):
            raise ValueError(f"dc augmentation fill must be 'batch' or 'image', got {fill!r}")
        self.ops = tuple(ops)
        self.crop, self.scale, self.rotate, self.fill = int(crop), float(scale), float(rotate), fill

    @classmethod
    def create(
        cls, *, strategy: str | None = None, space: TensorSpace | None = None, image_size: int | None = None
    ) -> DCAugmentation:
        return cls()  # ``strategy`` is DSA's op string; it does not apply here

    def _apply(self, x: Tensor, generator: torch.Generator) -> Tensor:
        n, _, h, w = x.shape
        g = generator
        # Every parameter is drawn for every image (a fixed stream layout), then used by one op.
        choice = torch.randint(len(self.ops), (n,), generator=g)
        shift = torch.randint(-self.crop, self.crop + 1, (n, 2), generator=g)
        factors = 1.0 - self.scale + torch.rand(n, 2, generator=g) * (2 * self.scale)
        angle = (torch.rand(n, generator=g) * 2 - 1) * (self.rotate * math.pi / 180.0)

        dims = (0, 2, 3) if self.fill == "batch" else (2, 3)
        fill = x.detach().mean(dim=dims, keepdim=True)  # [1 or n, C, 1, 1]
        centred = x - fill  # ops pad with 0 here, i.e. with ``fill`` after adding it back

        out = torch.empty_like(x)
        for k, op in enumerate(self.ops):
            sel_cpu = (choice == k).nonzero().squeeze(1)
            if sel_cpu.numel() == 0:
                continue
            sel = sel_cpu.to(x.device)
            xs = centred.index_select(0, sel)
            if op == "crop":
                s = shift[sel_cpu].to(x.device)
                y = translate(xs, s[:, 0], s[:, 1], self.crop, self.crop)
            elif op == "scale":
                f = factors[sel_cpu].to(device=x.device, dtype=x.dtype)
                zero = torch.zeros_like(f[:, 0])
                # output (u, v) samples input (u / fx, v / fy): content magnified by f
                y = affine(xs, 1.0 / f[:, 1], zero, zero, 1.0 / f[:, 0], align_corners=False)
            else:  # rotate about the centre; the aspect terms keep it a rotation for H != W
                a = angle[sel_cpu].to(device=x.device, dtype=x.dtype)
                cos, sin = torch.cos(a), torch.sin(a)
                y = affine(xs, cos, -sin * (h / w), sin * (w / h), cos, align_corners=False)
            out = out.index_copy(0, sel, y)
        return out + fill


AUGMENTATIONS.register("dc", DCAugmentation)
