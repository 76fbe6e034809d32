"""Random selection: class-balanced random real images (the baseline every result is compared to).

The pick is :func:`harness.data.random_real_indices` (one stream per seed), the same function the
evaluation's random-real baseline uses, so ``condense --method random --seed S`` and the baseline
of a protocol with seed ``S`` choose the same images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dcregistry.artifact import Artifact, build_artifact
from dcregistry.catalog import get_dataset_info
from harness.methods.base import CondenseContext, SelectionMethod
from harness.methods.registry import METHODS


@METHODS.register("random")
class RandomSelection(SelectionMethod[Any]):  # Config: no options
    """Uniformly random real images, ``ipc`` per class."""

    description = "class-balanced uniformly random real images"

    @dataclass
    class Config:
        pass

    def select(
        self, ctx: CondenseContext, cfg: Config, gen: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        from harness.data import random_real_indices
        from harness.data.sampling import RANDOM_REAL_STREAM

        # The shared per-seed stream (not the loop's gen): the baseline draws the very same images.
        idx = random_real_indices(ctx.labels, ctx.ipc, ctx.seed, ctx.num_classes)
        return idx.to(ctx.labels.device), {
            "selection": "class-balanced uniform",
            "stream": f"(seed, {RANDOM_REAL_STREAM!r})",
        }


def random_subset_artifact(
    out: str | Path,
    dataset: str = "digits",
    ipc: int = 10,
    seed: int = 0,
    *,
    image_size: int | None = None,
    data_root: str | None = None,
    pixel: str = "normalized",
    soft: bool = False,
    lr: float | None = None,
    overwrite: bool = False,
) -> Artifact:
    """Write ``ipc`` random train images per class as a dcreg artifact (normalized or unit).

    A lightweight builder for tests and benchmarks (soft labels, a fake learned lr); the same
    images as ``harness condense DATASET --method random --seed SEED``.
    """
    from dcregistry.pixelspace import PixelSpace
    from harness.data import TensorSpace, load_dataset, random_real_indices

    info = get_dataset_info(dataset)
    train = load_dataset(info.name, "train", data_root, image_size=image_size)
    idx = random_real_indices(train.labels, ipc, seed, info.num_classes)
    space = TensorSpace(PixelSpace.named(pixel, info))
    images = space.from_unit(train.images[idx])
    labels = train.labels[idx]
    tensors = {"images": images}
    if soft:  # one-hot logits: lets tests exercise the soft-label path on real images
        tensors["soft_labels"] = torch.nn.functional.one_hot(labels, info.num_classes).float() * 4
    else:
        tensors["labels"] = labels
    if lr is not None:
        tensors["lr"] = torch.tensor(float(lr))
    md = {
        "dataset": info.name,
        "image_shape": list(images.shape[1:]),
        "ipc": ipc,
        "method": "random",
        "pixel_space": space.to_dict(),
        "label_kind": "soft" if soft else "hard",
        "seed": seed,
        "class_names": list(train.class_names),
        "method_config": {
            "selection": "class-balanced uniform",
            "split": "train",
            **({"learned_lr": True} if lr is not None else {}),
        },
    }
    return build_artifact(out, tensors, md, overwrite=overwrite)
