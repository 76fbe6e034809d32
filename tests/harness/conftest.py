"""Harness fixtures: a small digits artifact made from real digits training images."""

from __future__ import annotations

import pytest
import torch

from dcregistry.artifact import build_artifact
from dcregistry.catalog import get_dataset_info


def digits_artifact(path, ipc: int = 5, seed: int = 0, image_size: int | None = None,
                    soft: bool = False, lr: float | None = None, pixel: str = "normalized"):
    """A class-balanced random subset of digits' train split as an artifact."""
    from harness.data import class_balanced_indices, load_dataset, normalized_space, to_pixel_space

    info = get_dataset_info("digits")
    train = load_dataset("digits", "train", image_size=image_size)
    idx = class_balanced_indices(train.labels, ipc, torch.Generator().manual_seed(seed))
    ps = normalized_space(info) if pixel == "normalized" else {"kind": "unit"}
    images = to_pixel_space(train.images[idx], ps)
    tensors = {"images": images}
    labels = train.labels[idx]
    if soft:
        tensors["soft_labels"] = torch.nn.functional.one_hot(labels, 10).float() * 4
    else:
        tensors["labels"] = labels
    if lr is not None:
        tensors["lr"] = torch.tensor(lr)
    md = {"dataset": "digits", "image_shape": list(images.shape[1:]), "ipc": ipc,
          "method": "random", "pixel_space": ps, "label_kind": "soft" if soft else "hard",
          "seed": seed, "method_config": {"learned_lr": lr is not None}}
    return build_artifact(path, tensors, md)


@pytest.fixture(autouse=True)
def _one_thread_for_determinism():
    # Tests compare runs bit for bit; fix intra-op threads so reductions are ordered the same.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def digits_art(tmp_path):
    return digits_artifact(tmp_path / "digits-ipc5")
