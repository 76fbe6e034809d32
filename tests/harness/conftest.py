"""Harness fixtures: a small digits artifact made from real digits training images."""

from __future__ import annotations

import pytest
import torch


def digits_artifact(
    path,
    ipc: int = 5,
    seed: int = 0,
    image_size: int | None = None,
    soft: bool = False,
    lr: float | None = None,
    pixel: str = "normalized",
):
    """A class-balanced random subset of digits' train split as an artifact."""
    from harness.methods.random import random_subset_artifact

    return random_subset_artifact(
        path, "digits", ipc, seed, image_size=image_size, pixel=pixel, soft=soft, lr=lr
    )


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
