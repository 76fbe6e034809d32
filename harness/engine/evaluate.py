"""Evaluate an artifact under a protocol and produce a result record.

The real test set is brought into the artifact's recorded image shape and pixel space
(normalized with the artifact's stats, or the same ZCA), so synthetic pixels are never clipped
or re-normalized behind the user's back. Model selection never looks at the test set: the
reported number is the final-epoch accuracy.
"""

from __future__ import annotations

import datetime as _dt
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch

from dcregistry.artifact import Artifact
from dcregistry.catalog import DATASETS
from dcregistry.errors import UserError
from harness import __version__
from harness.augment import PixelStats
from harness.data import ZCATransform, class_balanced_indices, fit_zca, load_dataset, to_pixel_space
from harness.protocols import Protocol

from .seeding import generator
from .strategies import Choice, augmentation_factory, choose_strategy, run_seeds
from .trainer import TestSet, TrainSet

RECORD_KIND = "dcreg-eval/1"


@dataclass
class Prepared:
    """Everything a protocol run needs, on the target device."""

    train: TrainSet
    test: TestSet
    pixel_space: dict
    stats: PixelStats | None  # None: ZCA space (torchvision augmentations unavailable)
    dsa_strategy: str
    zca: ZCATransform | None
    dataset: str
    image_size: int | None  # resize of the real images to the artifact's (None: native)
    data_root: str | None
    _train_split: tuple[torch.Tensor, torch.Tensor] | None = None

    def train_split(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The real train split (unit images, labels) at the artifact's size, loaded once."""
        if self._train_split is None:
            tr = load_dataset(self.dataset, "train", self.data_root, image_size=self.image_size)
            self._train_split = (tr.images, tr.labels)
        return self._train_split


def resolve_device(device: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; an unavailable cuda is a user error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but torch sees no CUDA device; use --device cpu")
    return torch.device(device)


def _eval_pixel_space(md: dict) -> dict:
    """uint8 sets are trained in the dataset's canonical normalized space (else unit)."""
    ps = md["pixel_space"]
    if ps["kind"] != "uint8":
        return ps
    info = DATASETS.get(md["dataset"])
    return ({"kind": "normalized", "mean": list(info.mean), "std": list(info.std)} if info
            else {"kind": "unit"})


def prepare(artifact: Artifact, device: torch.device, data_root: str | None = None) -> Prepared:
    """Load the artifact's tensors and the real test set in the same pixel space."""
    md = artifact.metadata
    c, h, w = md["image_shape"]
    info = DATASETS.get(md["dataset"])
    if info is None:
        raise UserError(f"dataset {md['dataset']!r} is not in the catalog; the harness cannot "
                        "load its test set")
    ps = _eval_pixel_space(md)
    images = artifact.torch("images").float()
    if md["pixel_space"]["kind"] == "uint8":
        images = to_pixel_space(images / 255.0, ps)
    targets = artifact.torch(artifact.label_key)
    targets = targets.float() if md["label_kind"] == "soft" else targets.long()
    lr = float(artifact.torch("lr").reshape(-1)[0]) if "lr" in artifact.tensor_names else None
    size = None if (h, w) == info.image_shape[1:] else h
    test_unit = load_dataset(md["dataset"], "test", data_root, image_size=size)
    if test_unit.images.shape[1:] != images.shape[1:]:
        raise UserError(f"test images {list(test_unit.images.shape[1:])} cannot be matched to the "
                        f"artifact's image_shape {[c, h, w]}")
    prepared = Prepared(
        TrainSet(images.to(device), targets.to(device), md["num_classes"], lr), None, ps, None,
        info.dsa_strategy, None, md["dataset"], size, data_root)
    if ps["kind"] == "zca":
        if ps["transform"]["source"] == "tensors":
            prepared.zca = ZCATransform.from_tensors(
                {n: artifact.torch(n) for n in ("zca_mean", "zca_matrix", "zca_inverse")},
                ps["variant"])
        else:
            prepared.zca = fit_zca(to_pixel_space(prepared.train_split()[0], ps["then"]),
                                   ps["variant"])
    test_images = to_pixel_space(test_unit.images, ps, prepared.zca)
    prepared.test = TestSet(test_images.to(device), test_unit.labels.to(device))
    if ps["kind"] == "normalized":
        prepared.stats = PixelStats(tuple(ps["mean"]), tuple(ps["std"]))
    elif ps["kind"] == "unit":
        prepared.stats = PixelStats(None, None)
    return prepared


def random_real_subset(artifact: Artifact, prepared: Prepared, seed: int) -> TrainSet:
    """An equal-size class-balanced random subset of the real train split, same pixel space."""
    md = artifact.metadata
    images, labels = prepared.train_split()
    idx = class_balanced_indices(labels, md["ipc"], generator(seed, "baseline"),
                                 num_classes=md["num_classes"])
    x = to_pixel_space(images[idx], prepared.pixel_space, prepared.zca)
    device = prepared.train.images.device
    return TrainSet(x.to(device), labels[idx].to(device), md["num_classes"], prepared.train.lr)


def _aug_factory(protocol: Protocol, prepared: Prepared):
    name = protocol.augmentation
    if prepared.stats is None and name in ("imagenet", "randaug", "autoaug"):
        raise UserError(f"augmentation {name!r} needs pixels in [0, 1], which a ZCA set cannot be "
                        "mapped back to faithfully; use a dsa or none protocol")
    return augmentation_factory(name, strategy=prepared.dsa_strategy,
                                stats=prepared.stats or PixelStats(None, None),
                                image_size=prepared.train.images.shape[-1])


def _summary(accs: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(accs)
    std = statistics.pstdev(accs) if len(accs) > 1 else 0.0
    return mean, std


def evaluate(artifact: Artifact, protocol: Protocol, *, ref: str | None = None,
             device: str = "auto", data_root: str | None = None, strategy: str = "auto",
             baseline: bool = False,
             progress: Callable[[int, int], Callable[[int], None]] | None = None) -> dict:
    """Evaluate ``artifact`` under ``protocol``; returns the result record (JSON-ready dict).

    ``progress(total_epochs, phase)`` may return a callback receiving finished-epoch counts.
    """
    t0 = time.perf_counter()
    dev = resolve_device(device)
    prepared = prepare(artifact, dev, data_root)
    factory = _aug_factory(protocol, prepared)
    seeds = protocol.seeds
    choice: Choice = choose_strategy(protocol, prepared.train, factory, len(seeds), strategy)
    total = len(seeds) * (protocol.epochs + 1) * (2 if baseline else 1)
    tick = progress(total, choice.strategy) if progress else None
    results, clipped = run_seeds(protocol, prepared.train, prepared.test, factory, seeds,
                                 choice.strategy, tick)
    accs = [r.accuracy for r in results]
    mean, std = _summary(accs)
    base_block = None
    if baseline:
        base_train = random_real_subset(artifact, prepared, protocol.seed)
        base_results, base_clipped = run_seeds(protocol, base_train, prepared.test, factory,
                                               seeds, choice.strategy, tick)
        clipped = clipped or base_clipped
        b_accs = [r.accuracy for r in base_results]
        b_mean, b_std = _summary(b_accs)
        base_block = {"kind": "random-real", "ipc": artifact.metadata["ipc"],
                      "accuracies": b_accs, "mean": b_mean, "std": b_std, "delta": mean - b_mean}
    md = artifact.metadata
    return {
        "kind": RECORD_KIND,
        "artifact": {"ref": ref or str(artifact.path), "digest": artifact.digest,
                     "dataset": md["dataset"], "method": md["method"], "ipc": md["ipc"]},
        "protocol": protocol.to_record(),
        "harness_version": __version__,
        "torch_version": torch.__version__,
        "device": _device_name(dev),
        "strategy": {"name": choice.strategy, "measured": choice.measured, "reason": choice.reason},
        "seeds": seeds,
        "accuracies": accs,
        "mean": mean,
        "std": std,
        "final_train_loss": [r.final_train_loss for r in results],
        "lr": prepared.train.lr if protocol.lr_source == "artifact" else protocol.lr,
        "clipped": clipped,
        "baseline": base_block,
        "wall_time_s": round(time.perf_counter() - t0, 3),
        "created_at": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": platform.node(),
    }


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(dev)}"
    return f"cpu:{torch.get_num_threads()}threads"


def record_summary(record: dict[str, Any]) -> str:
    """One line: ``protocol  mean ± std  (baseline ..)``."""
    line = (f"{record['protocol']['id']}: {100 * record['mean']:.2f} ± {100 * record['std']:.2f} %"
            f" over {len(record['accuracies'])} runs")
    if record.get("baseline"):
        b = record["baseline"]
        line += f"; random real {100 * b['mean']:.2f} ± {100 * b['std']:.2f} % (delta {100 * b['delta']:+.2f})"
    return line
