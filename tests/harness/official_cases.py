"""The fixed inputs of the official-code pins (``tests/fixtures/official_matching_pins.json``).

One definition shared by the test (``test_methods_official_pins.py``) and the driver that
recorded the pins with the official DC/DSA/DM formulas (``scripts/fidelity/official_pins.py``):
for every case (image size 8 / 28 / 32, 1 or 3 channels, IPC 1 or 10) a network initialisation,
per-class real batches, the synthetic images, and one Siamese DSA draw with fixed parameters.

* images: digits' train split, normalized (sizes 28 and 32 resized with ``harness.data``); the
  3-channel cases repeat the gray channel and add N(0, 0.25^2) noise from a seeded generator;
* real batch of class c: its first ``REAL_PER_CLASS`` training images; synthetic images of
  class c: the next ``ipc`` (so no synthetic image is in its real batch);
* network: ``create_model("convnet", ...)`` with weights from ``Generator().manual_seed(NET_SEED)``
  (the driver loads the same weights into the official ConvNet);
* DSA: case ``i`` uses family ``FAMILIES[i % 6]`` with the parameters in ``DSA_VALUES``.
"""

from __future__ import annotations

from functools import lru_cache

import torch

REAL_PER_CLASS = 32
NET_SEED = 0
NOISE_SEED = 1234
NUM_CLASSES = 10
CASES: list[tuple[int, int, int]] = [
    (size, ch, ipc) for size in (8, 28, 32) for ch in (1, 3) for ipc in (1, 10)
]
FAMILIES = ("scale", "rotate", "crop", "cutout", "flip", "color")
# Per family: the per-image values of our DSASample (harness.augment.dsa), all within the
# published ranges at every case size (crop shift <= int(0.125 H + 0.5), cutout centre <= H - 1).
DSA_VALUES: dict[str, dict[str, float | int | bool]] = {
    "scale": {"sx": 1.137, "sy": 0.913},
    "rotate": {"angle": 0.213},
    "crop": {"ty": 1, "tx": -1},
    "cutout": {"cy": 3, "cx": 5},
    "flip": {"flip": True},
    "color": {"brightness": 0.173, "saturation": 1.37, "contrast": 0.83},
}


def case_id(size: int, channels: int, ipc: int) -> str:
    return f"{size}px-{channels}ch-ipc{ipc}"


def case_family(size: int, channels: int, ipc: int) -> str:
    return FAMILIES[CASES.index((size, channels, ipc)) % len(FAMILIES)]


@lru_cache(maxsize=6)
def _images(size: int, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    from dcregistry.catalog import get_dataset_info
    from harness.data import load_dataset, normalized_space, to_pixel_space

    info = get_dataset_info("digits")
    train = load_dataset("digits", "train", None, image_size=None if size == 8 else size)
    x = to_pixel_space(train.images, normalized_space(info))
    if channels == 3:
        noise = torch.randn(x.shape[0], 3, size, size, generator=torch.Generator().manual_seed(NOISE_SEED))
        x = x.repeat(1, 3, 1, 1) + 0.25 * noise
    return x, train.labels


def case_batches(size: int, channels: int, ipc: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """(real batch per class, synthetic images ``[NUM_CLASSES * ipc, C, H, W]`` in class order)."""
    x, y = _images(size, channels)
    real, syn = [], []
    for c in range(NUM_CLASSES):
        idx = torch.nonzero(y == c).reshape(-1)
        real.append(x[idx[:REAL_PER_CLASS]].clone())
        syn.append(x[idx[REAL_PER_CLASS : REAL_PER_CLASS + ipc]])
    return real, torch.cat(syn).clone()


def case_net(size: int, channels: int) -> torch.nn.Module:
    """Our ConvNet for the case, initialised from ``NET_SEED``."""
    from harness.models import create_model

    return create_model(
        "convnet", channels, NUM_CLASSES, size, generator=torch.Generator().manual_seed(NET_SEED)
    )


def case_dsa_sample(size: int, channels: int, ipc: int):
    """The case's Siamese DSA draw (for n=1; applied to whole batches with broadcast)."""
    from harness.augment.dsa import DSASample

    family = case_family(size, channels, ipc)
    values = {}
    for k, v in DSA_VALUES[family].items():
        dtype = torch.bool if isinstance(v, bool) else torch.long if isinstance(v, int) else torch.float32
        values[k] = torch.tensor([v], dtype=dtype)
    return DSASample(family, 1, (channels, size, size), values)


def grad_stats(g: torch.Tensor) -> dict:
    """What the pins record of a gradient: norm, sums and 8 probed entries."""
    flat = g.detach().reshape(-1).double()
    n = flat.numel()
    probes = [round(i * (n - 1) / 7) for i in range(8)]
    return {
        "norm": float(flat.norm()),
        "abs_sum": float(flat.abs().sum()),
        "sum": float(flat.sum()),
        "probe_index": probes,
        "probe": [float(flat[i]) for i in probes],
    }
