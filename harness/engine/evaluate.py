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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from dcregistry.artifact import Artifact
from dcregistry.catalog import DATASETS
from dcregistry.errors import UserError
from dcregistry.pixelspace import PixelSpace
from dcregistry.records import RECORD_KIND, Baseline, EvalRecord  # noqa: F401  (RECORD_KIND re-exported)
from harness import __version__
from harness.augment import AUGMENTATIONS
from harness.data import TensorSpace, ZCATransform, fit_zca, load_dataset, random_real_indices
from harness.protocols import Protocol

from .strategies import AugFactory, Choice, augmentation_factory, choose_strategy, run_seeds
from .trainer import RunResult, TestSet, TrainSet


@dataclass(frozen=True)
class Prepared:
    """Everything a protocol run needs, on the target device (built once by :func:`prepare`)."""

    train: TrainSet
    test: TestSet
    space: TensorSpace  # the pixel space both sets are in (with its fitted ZCA)
    dsa_strategy: str
    dataset: str
    image_size: int | None  # resize of the real images to the artifact's (None: native)
    data_root: str | None
    # The real train split (unit images, labels) at the artifact's size, when it was needed
    # (ZCA refit or the random-real baseline); loaded at most once.
    train_split: tuple[torch.Tensor, torch.Tensor] | None = None


def resolve_device(device: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; an unavailable cuda is a user error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but torch sees no CUDA device; use --device cpu")
    return torch.device(device)


def _eval_space(stored: PixelSpace, dataset: str) -> PixelSpace:
    """uint8 sets are trained in the dataset's canonical normalized space (else unit)."""
    if stored.kind != "uint8":
        return stored
    info = DATASETS.get(dataset)
    return PixelSpace.of_dataset(info) if info else PixelSpace.unit()


def prepare(
    artifact: Artifact, device: torch.device, data_root: str | None = None, *, with_train_split: bool = False
) -> Prepared:
    """Load the artifact's tensors and the real test set in the same pixel space.

    ``with_train_split`` also keeps the real train split (for the random-real baseline).
    """
    md = artifact.metadata
    c, h, w = md["image_shape"]
    info = DATASETS.get(md["dataset"])
    if info is None:
        raise UserError(
            f"dataset {md['dataset']!r} is not in the catalog; the harness cannot load its test set"
        )
    stored = PixelSpace.parse(md["pixel_space"])  # parsed once; the object travels from here
    space = _eval_space(stored, md["dataset"])
    images = artifact.torch("images").float()
    if stored.kind == "uint8":
        images = TensorSpace(space).from_unit(TensorSpace(stored).to_unit(images))
    targets = artifact.torch(artifact.label_key)
    targets = targets.float() if md["label_kind"] == "soft" else targets.long()
    lr = float(artifact.torch("lr").reshape(-1)[0]) if "lr" in artifact.tensor_names else None
    size = None if (h, w) == info.image_shape[1:] else h
    test_unit = load_dataset(md["dataset"], "test", data_root, image_size=size)
    if test_unit.images.shape[1:] != images.shape[1:]:
        raise UserError(
            f"test images {list(test_unit.images.shape[1:])} cannot be matched to the "
            f"artifact's image_shape {[c, h, w]}"
        )
    refit_zca = space.is_zca and not space.zca_stored
    split = None
    if with_train_split or refit_zca:
        tr = load_dataset(md["dataset"], "train", data_root, image_size=size)
        split = (tr.images, tr.labels)
    zca: ZCATransform | None = None
    if space.is_zca:
        assert space.variant is not None  # PixelSpace.parse gives every zca space its variant
        if not refit_zca:
            zca = ZCATransform.from_tensors({n: artifact.torch(n) for n in space.tensor_names}, space.variant)
        else:
            assert split is not None  # loaded above whenever the ZCA is refitted
            zca = fit_zca(TensorSpace(space.inner).from_unit(split[0]), space.variant)
    tspace = TensorSpace(space, zca)
    return Prepared(
        train=TrainSet(images.to(device), targets.to(device), md["num_classes"], lr),
        test=TestSet(tspace.from_unit(test_unit.images).to(device), test_unit.labels.to(device)),
        space=tspace,
        dsa_strategy=info.dsa_strategy,
        dataset=md["dataset"],
        image_size=size,
        data_root=data_root,
        train_split=split,
    )


def random_real_subset(prepared: Prepared, ipc: int, seed: int) -> TrainSet:
    """The equal-size class-balanced random real subset (:func:`random_real_indices`, the same
    images as ``condense --method random --seed seed``), in the set's pixel space."""
    if prepared.train_split is None:
        raise ValueError("prepare(..., with_train_split=True) is needed for the baseline")
    images, labels = prepared.train_split
    idx = random_real_indices(labels, ipc, seed, prepared.train.num_classes)
    x = prepared.space.from_unit(images[idx])
    device = prepared.train.images.device
    return TrainSet(x.to(device), labels[idx].to(device), prepared.train.num_classes, prepared.train.lr)


def protocol_aug_factory(
    protocol: Protocol, space: TensorSpace, dsa_strategy: str, image_size: int
) -> AugFactory:
    """The protocol's augmentation for images in ``space`` (refused where it cannot work there)."""
    name = protocol.augmentation
    needs_unit = AUGMENTATIONS.get(name).needs_unit_range
    if needs_unit and not space.unit_range_exact:
        raise UserError(
            f"augmentation {name!r} needs pixels in [0, 1], which a ZCA set cannot be "
            "mapped back to faithfully; use a dsa or none protocol"
        )
    # Only those that use the space get it: a ZCA space's matrices would travel to every worker.
    return augmentation_factory(
        name, strategy=dsa_strategy, space=space if needs_unit else None, image_size=image_size
    )


def _summary(accs: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(accs)
    std = statistics.pstdev(accs) if len(accs) > 1 else 0.0
    return mean, std


@dataclass
class SetsResult:
    """Per-seed results of :func:`evaluate_sets` and how they were run."""

    results: list[RunResult]
    clipped: bool
    choice: Choice

    @property
    def accuracies(self) -> list[float]:
        return [r.accuracy for r in self.results]


def evaluate_sets(
    train: TrainSet,
    test: TestSet,
    protocol: Protocol,
    aug_factory: AugFactory,
    *,
    strategy: str = "auto",
    seeds: list[int] | None = None,
    tick: Callable[[int], object] | None = None,
    choice: Choice | None = None,
) -> SetsResult:
    """Train a fresh network per seed on ``train`` and test it on ``test`` (any held-out set).

    ``tick(n)`` receives finished-epoch counts; ``choice`` reuses an earlier strategy choice.
    """
    seeds = protocol.seeds if seeds is None else seeds
    if choice is None:
        choice = choose_strategy(protocol, train, aug_factory, len(seeds), strategy)
    results, clipped = run_seeds(protocol, train, test, aug_factory, seeds, choice.strategy, tick)
    return SetsResult(results, clipped, choice)


def evaluate(
    artifact: Artifact,
    protocol: Protocol,
    *,
    ref: str | None = None,
    device: str = "auto",
    data_root: str | None = None,
    strategy: str = "auto",
    baseline: bool = False,
    progress: Callable[[int, str], Callable[[int], None]] | None = None,
) -> EvalRecord:
    """Evaluate ``artifact`` under ``protocol``; returns the typed result record.

    ``progress(total_epochs, phase)`` may return a callback receiving finished-epoch counts.
    """
    t0 = time.perf_counter()
    dev = resolve_device(device)
    prepared = prepare(artifact, dev, data_root, with_train_split=baseline)
    factory = protocol_aug_factory(
        protocol, prepared.space, prepared.dsa_strategy, prepared.train.images.shape[-1]
    )
    seeds = protocol.seeds
    choice: Choice = choose_strategy(protocol, prepared.train, factory, len(seeds), strategy)
    total = len(seeds) * (protocol.epochs + 1) * (2 if baseline else 1)
    tick = progress(total, choice.strategy) if progress else None
    main = evaluate_sets(prepared.train, prepared.test, protocol, factory, tick=tick, choice=choice)
    accs = main.accuracies
    clipped = main.clipped
    mean, std = _summary(accs)
    base_block = None
    if baseline:
        base_train = random_real_subset(prepared, artifact.metadata["ipc"], protocol.seed)
        base = evaluate_sets(base_train, prepared.test, protocol, factory, tick=tick, choice=choice)
        clipped = clipped or base.clipped
        b_mean, b_std = _summary(base.accuracies)
        base_block = Baseline(
            ipc=artifact.metadata["ipc"],
            accuracies=base.accuracies,
            mean=b_mean,
            std=b_std,
            delta=mean - b_mean,
        )
    md = artifact.metadata
    return EvalRecord(
        artifact={
            "ref": ref or str(artifact.path),
            "digest": artifact.digest,
            "dataset": md["dataset"],
            "method": md["method"],
            "ipc": md["ipc"],
        },
        protocol=protocol.to_record(),
        harness_version=__version__,
        torch_version=torch.__version__,
        device=_device_name(dev),
        strategy={"name": choice.strategy, "measured": choice.measured, "reason": choice.reason},
        seeds=list(seeds),
        accuracies=accs,
        mean=mean,
        std=std,
        final_train_loss=[r.final_train_loss for r in main.results],
        lr=prepared.train.lr if protocol.lr_source == "artifact" else protocol.lr,
        clipped=clipped,
        baseline=base_block,
        wall_time_s=round(time.perf_counter() - t0, 3),
        created_at=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        host=platform.node(),
    )


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(dev)}"
    return f"cpu:{torch.get_num_threads()}threads"


def record_summary(record: EvalRecord | dict[str, Any]) -> str:
    """One line: ``protocol  mean ± std  (baseline ..)``."""
    rec = record if isinstance(record, EvalRecord) else EvalRecord.from_json(record)
    return rec.summary()
