"""``imagenet``, ``randaug``, ``autoaug``: DC-Bench's torchvision augmentations, in float.

* ``imagenet``: RandomCrop(H, padding=4) + RandomHorizontalFlip + ColorJitter(0.4, 0.4, 0.4, 0.2);
* ``randaug``: RandAugment(num_ops=1) (torchvision defaults: magnitude 9 of 31 bins);
* ``autoaug``: AutoAugment with the CIFAR10 policy, the IMAGENET policy for 64 px images.

DC-Bench converted synthetic images to uint8 before these transforms, which clips and quantizes
learned pixels (a known flaw). Here each batch goes ``to_unit`` (undo the artifact's
normalization) -> clamp to [0, 1] only where the chosen op needs it, counting the clamped pixels
(``clipped``) -> torchvision.transforms.v2 on the float tensor -> ``from_unit``. Padding/fill
is 0 in unit space (black), as with DC-Bench's uint8 images. Each image gets its own random op.
The output carries no gradient (these are evaluation-time augmentations).

What transforms.v2 (0.28) does with float pixels outside [0, 1], checked op by op:

* clamp their output to [0, 1]: brightness, saturation ("Color"; a no-op on 1-channel images),
  contrast, sharpness (all via ``_blend``), posterize (floor + clamp; quantizes to 2^bits
  levels by design), autocontrast (rescales each channel's min..max to [0, 1], so it loses
  nothing and needs no clamping before it);
* equalize converts to uint8 internally: out-of-range values wrap around (garbage), and the
  output is quantized to 256 levels even for float input;
* hue (ColorJitter only) goes through HSV and assumes [0, 1] input (out-of-range values give
  wrong colours rather than a clamp);
* no clamping, value range kept: crop/pad, flip, rotate, shear, translate (affine, fill 0),
  solarize (``1 - x`` above the threshold), invert, identity.

So we clamp before brightness/Color (3 channels)/contrast/sharpness/posterize/equalize in
RandAugment/AutoAugment (hooked per op, so an image that draws e.g. Rotate is not clamped), and
before the whole ``imagenet`` pipeline (ColorJitter always applies brightness and contrast). The
op hook overrides ``_apply_image_or_video_transform`` of torchvision's policy classes (a private
method); if a torchvision version lacks it, every image is clamped up front instead.

Reproducibility: torchvision draws its parameters from torch's global CPU RNG. Each call runs
inside ``torch.random.fork_rng(devices=[])`` (the global CPU RNG state is restored on exit) and
reseeds the global CPU generator per image with an integer drawn from the explicit generator.

Cost (2-core CPU, 1 thread, float32, per image, this wrapper included): imagenet ~0.17 ms
(1x28x28), ~0.56 ms (3x32x32), ~1.0 ms (3x64x64) (ColorJitter's hue dominates); randaug
~0.19 ms (28-32 px), ~0.35 ms (64 px); autoaug ~0.27 ms (28-32 px), ~0.45 ms (64 px). DSA on a
batch costs ~0.015 ms per 32 px image by comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from dcregistry.errors import UserError
from harness.data.pixelspace import TensorSpace

from .base import Augmentation
from .registry import AUGMENTATIONS

#: Policy ops that need [0, 1] input (see the module docstring).
CLAMPING_OPS = frozenset({"Brightness", "Color", "Contrast", "Sharpness", "Posterize", "Equalize"})
#: Ops that leave 1-channel images unchanged (torchvision matches PIL here).
GRAY_NOOPS = frozenset({"Color"})


def _with_clamp_hook(
    base_cls: type, clamp_ops: frozenset[str], clamp: Callable[[Tensor], Tensor], **kwargs: Any
) -> tuple[Any, bool]:
    """Instantiate a torchvision AutoAugment-style policy that clamps before the ops that need it.

    Returns (transform, hooked); hooked is False where torchvision lacks the per-op method.
    """
    if not hasattr(base_cls, "_apply_image_or_video_transform"):
        return base_cls(**kwargs), False

    class _Clamping(base_cls):  # type: ignore[misc]  # a dynamic base (torchvision policy class)
        def _apply_image_or_video_transform(self, image, transform_id, *args, **kw):
            if transform_id in clamp_ops:
                image = clamp(image)
            return super()._apply_image_or_video_transform(image, transform_id, *args, **kw)

    _Clamping.__name__ = _Clamping.__qualname__ = f"Clamping{base_cls.__name__}"
    return _Clamping(**kwargs), True


class _TorchvisionAugmentation(Augmentation):
    clips = True
    needs_unit_range = True

    def __init__(self, space: TensorSpace | None = None, image_size: int | None = None):
        super().__init__()
        self.space = space or TensorSpace.unit()
        if not self.space.unit_range_exact:
            raise UserError(
                f"augmentation {self.name!r} needs pixels in [0, 1], which a "
                f"{self.space.describe()} set cannot be mapped back to faithfully; use a dsa or none protocol"
            )
        self.image_size = image_size
        self._cache: dict[tuple[int, int, int], tuple[Any, bool]] = {}

    @classmethod
    def create(
        cls, *, strategy: str | None = None, space: TensorSpace | None = None, image_size: int | None = None
    ) -> _TorchvisionAugmentation:
        return cls(space=space, image_size=image_size)  # ``strategy`` (DSA's) does not apply

    def _build(self, c: int, h: int, w: int) -> tuple[Any, bool]:
        """Return (transform, clamps_per_op)."""
        raise NotImplementedError

    def _apply(self, x: Tensor, generator: torch.Generator) -> Tensor:
        n, c, h, w = x.shape
        if self.image_size is not None and (h, w) != (self.image_size, self.image_size):
            raise ValueError(f"{self.name} was set up for {self.image_size}px images, got {h}x{w}")
        key = (c, h, w)
        if key not in self._cache:
            self._cache[key] = self._build(c, h, w)
        transform, clamps_per_op = self._cache[key]
        seeds = torch.randint(0, 2**62, (n,), generator=generator).tolist()
        with torch.no_grad():
            u = self.space.to_unit(x)
            if not clamps_per_op:
                u = self._count_and_clamp(u)
            outs = []
            # torchvision samples from the global CPU RNG: fork it (its state is restored when the
            # block exits) and reseed it per image from the explicit generator. We seed
            # torch.default_generator, not torch.manual_seed(), which would also reseed the CUDA
            # generators that fork_rng(devices=[]) does not restore.
            with torch.random.fork_rng(devices=[]):
                for i, seed in enumerate(seeds):
                    torch.default_generator.manual_seed(seed)
                    outs.append(transform(u[i]))
            return self.space.from_unit(torch.stack(outs))


class ImageNetAugmentation(_TorchvisionAugmentation):
    """``imagenet``: RandomCrop(pad 4) + HFlip + ColorJitter(0.4, 0.4, 0.4, 0.2); clamps every image."""

    name = "imagenet"

    def _build(self, c: int, h: int, w: int) -> tuple[Any, bool]:
        from harness._torchvision import transforms_v2

        v2 = transforms_v2()
        transform = v2.Compose(
            [
                v2.RandomCrop((h, w), padding=4),
                v2.RandomHorizontalFlip(),
                v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.2),
            ]
        )
        return transform, False


class RandAugmentation(_TorchvisionAugmentation):
    """``randaug``: RandAugment(num_ops=1); clamps only before ops that need [0, 1]."""

    name = "randaug"

    def _build(self, c: int, h: int, w: int) -> tuple[Any, bool]:
        from harness._torchvision import transforms_v2

        v2 = transforms_v2()
        ops = CLAMPING_OPS - GRAY_NOOPS if c == 1 else CLAMPING_OPS
        return _with_clamp_hook(v2.RandAugment, ops, self._count_and_clamp, num_ops=1)


class AutoAugmentation(_TorchvisionAugmentation):
    """``autoaug``: AutoAugment, CIFAR10 policy (IMAGENET policy for 64 px images)."""

    name = "autoaug"

    def _build(self, c: int, h: int, w: int) -> tuple[Any, bool]:
        from harness._torchvision import transforms_v2

        v2 = transforms_v2()
        size = self.image_size if self.image_size is not None else h
        policy = v2.AutoAugmentPolicy.IMAGENET if size == 64 else v2.AutoAugmentPolicy.CIFAR10
        ops = CLAMPING_OPS - GRAY_NOOPS if c == 1 else CLAMPING_OPS
        return _with_clamp_hook(v2.AutoAugment, ops, self._count_and_clamp, policy=policy)

    def policy_name(self, image_size: int) -> str:
        size = self.image_size if self.image_size is not None else image_size
        return "imagenet" if size == 64 else "cifar10"


AUGMENTATIONS.register("imagenet", ImageNetAugmentation)
AUGMENTATIONS.register("randaug", RandAugmentation)
AUGMENTATIONS.register("autoaug", AutoAugmentation)
