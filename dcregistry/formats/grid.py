"""Viewing an artifact: pixels back to [0, 1] and a labelled PNG grid (numpy + PIL only).

``to_unit_images`` undoes the recorded pixel space with :class:`dcregistry.pixelspace.PixelSpace`
(ZCA through the artifact's ``zca_inverse``/``zca_mean``), or, when a ZCA artifact does not carry
the whitening tensors, a per-image min-max rescale (reported as a note).
Values are clipped to [0, 1] only for display; the artifact is never changed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..pixelspace import PixelSpace

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image as PILImage

    from ..artifact import Artifact

MIN_TILE_PX = 32
PAD_PX = 2
LABEL_MAX_CHARS = 28


def to_unit_images(
    images: np.ndarray, pixel_space: Mapping[str, Any], zca: Mapping[str, np.ndarray] | None = None
) -> tuple[np.ndarray, list[str]]:
    """``images`` [N, C, H, W] in ``pixel_space`` -> float32 in (about) [0, 1], plus notes.

    ``zca`` holds ``zca_mean`` and ``zca_inverse`` when the artifact carries them.
    """
    space = PixelSpace.parse(pixel_space)
    if not space.is_zca:
        return space.to_unit(images), []
    x = np.asarray(images).astype(np.float32)
    if zca and "zca_inverse" in zca and "zca_mean" in zca:
        return space.to_unit(x, zca), ["ZCA inverted with the artifact's zca_inverse/zca_mean"]
    lo = x.reshape(x.shape[0], -1).min(axis=1).reshape(-1, 1, 1, 1)
    hi = x.reshape(x.shape[0], -1).max(axis=1).reshape(-1, 1, 1, 1)
    return ((x - lo) / np.maximum(hi - lo, 1e-12)).astype(np.float32), [
        "ZCA-whitened pixels without stored zca_inverse: each image min-max rescaled for "
        "viewing (colors are not the original ones)"
    ]


def display_labels(art: Artifact) -> tuple[np.ndarray, list[str]]:
    """Class id per image: hard labels, or the argmax of soft labels (with a note)."""
    if art.metadata["label_kind"] == "soft":
        return (
            np.asarray(art.numpy("soft_labels")).argmax(axis=1).astype(np.int64),
            ["soft labels: images grouped by their argmax class"],
        )
    return np.asarray(art.numpy("labels")).astype(np.int64), []


def artifact_unit_images(art: Artifact) -> tuple[np.ndarray, list[str]]:
    """The artifact's images in [0, 1] for viewing (clipped), plus notes."""
    names = set(art.tensor_names)
    zca: dict[str, np.ndarray] = {n: art.numpy(n) for n in ("zca_mean", "zca_inverse") if n in names}
    unit, notes = to_unit_images(art.numpy("images"), art.metadata["pixel_space"], zca)
    clipped: np.ndarray = np.clip(unit, 0.0, 1.0)
    return clipped, notes


def to_uint8_hwc(unit_image: np.ndarray) -> np.ndarray:
    """One [C, H, W] image in [0, 1] -> uint8 [H, W, C] (or [H, W] for one channel)."""
    arr = np.clip(np.rint(np.clip(unit_image, 0, 1) * 255.0), 0, 255).astype(np.uint8)
    arr = arr.transpose(1, 2, 0)
    hwc: np.ndarray = arr[:, :, 0] if arr.shape[2] == 1 else arr
    return hwc


def render_grid(
    unit_images: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    max_per_class: int = 10,
    min_tile: int = MIN_TILE_PX,
) -> PILImage.Image:
    """A labelled grid: one row per class (name at the left), up to ``max_per_class`` images.

    Images are [N, C, H, W] in [0, 1] (C = 1 or 3); tiles are upscaled with nearest-neighbour by
    an integer factor to at least ``min_tile`` pixels.
    """
    from PIL import Image, ImageDraw, ImageFont

    if max_per_class < 1:
        raise ValueError("max_per_class must be at least 1")
    n, c, h, w = unit_images.shape
    k = len(class_names)
    scale = max(1, math.ceil(min_tile / min(h, w)))
    th, tw = h * scale, w * scale
    per_class = [np.flatnonzero(labels == i)[:max_per_class] for i in range(k)]
    cols = max(1, max((len(p) for p in per_class), default=1))
    font = ImageFont.load_default()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    names = [_short(str(name), isinstance(font, ImageFont.FreeTypeFont)) for name in class_names]
    label_w = int(max((measure.textlength(nm, font=font) for nm in names), default=0)) + 3 * PAD_PX
    width = label_w + cols * (tw + PAD_PX) + PAD_PX
    height = k * (th + PAD_PX) + PAD_PX
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for row, idx in enumerate(per_class):
        top = PAD_PX + row * (th + PAD_PX)
        bbox = draw.textbbox((0, 0), names[row], font=font)
        text_h = bbox[3] - bbox[1]
        draw.text((PAD_PX, top + (th - text_h) // 2 - bbox[1]), names[row], fill=(0, 0, 0), font=font)
        for col, i in enumerate(idx):
            tile = Image.fromarray(to_uint8_hwc(unit_images[i]))
            tile = tile.convert("RGB").resize((tw, th), Image.Resampling.NEAREST)
            canvas.paste(tile, (label_w + col * (tw + PAD_PX), top))
    return canvas


def _short(name: str, unicode_font: bool) -> str:
    if len(name) > LABEL_MAX_CHARS:
        name = name[: LABEL_MAX_CHARS - 3] + "..."
    # PIL's bitmap fallback font only encodes latin-1.
    return name if unicode_font else name.encode("latin-1", "replace").decode("latin-1")


def grid_image(art: Artifact, max_per_class: int = 10) -> tuple[PILImage.Image, list[str]]:
    """The labelled PNG grid of an artifact (not saved) and notes about how it was made."""
    unit, notes = artifact_unit_images(art)
    labels, label_notes = display_labels(art)
    image = render_grid(unit, labels, art.metadata["class_names"], max_per_class)
    return image, notes + label_notes


def save_grid_png(art: Artifact, out: str | Path, max_per_class: int = 10) -> list[str]:
    """Write the grid of ``art`` to ``out`` as PNG; return notes."""
    image, notes = grid_image(art, max_per_class)
    image.save(out, format="PNG")
    return notes
