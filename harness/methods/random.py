"""Random selection: class-balanced random real images (the baseline every result is compared to)."""

from __future__ import annotations

from pathlib import Path

import torch

from dcregistry.artifact import Artifact, build_artifact
from dcregistry.catalog import get_dataset_info


def random_subset_artifact(out: str | Path, dataset: str = "digits", ipc: int = 10, seed: int = 0,
                           *, image_size: int | None = None, data_root: str | None = None,
                           pixel: str = "normalized", soft: bool = False,
                           lr: float | None = None, overwrite: bool = False) -> Artifact:
    """Write ``ipc`` random train images per class as a dcreg artifact (normalized or unit)."""
    from harness.data import class_balanced_indices, load_dataset, normalized_space, to_pixel_space

    info = get_dataset_info(dataset)
    train = load_dataset(info.name, "train", data_root, image_size=image_size)
    idx = class_balanced_indices(train.labels, ipc, torch.Generator().manual_seed(seed),
                                 num_classes=info.num_classes)
    ps = normalized_space(info) if pixel == "normalized" else {"kind": "unit"}
    images = to_pixel_space(train.images[idx], ps)
    labels = train.labels[idx]
    tensors = {"images": images}
    if soft:  # one-hot logits: lets tests exercise the soft-label path on real images
        tensors["soft_labels"] = torch.nn.functional.one_hot(labels, info.num_classes).float() * 4
    else:
        tensors["labels"] = labels
    if lr is not None:
        tensors["lr"] = torch.tensor(float(lr))
    md = {"dataset": info.name, "image_shape": list(images.shape[1:]), "ipc": ipc,
          "method": "random", "pixel_space": ps, "label_kind": "soft" if soft else "hard",
          "seed": seed, "class_names": list(train.class_names),
          "method_config": {"selection": "class-balanced uniform", "split": "train",
                            **({"learned_lr": True} if lr is not None else {})}}
    return build_artifact(out, tensors, md, overwrite=overwrite)
