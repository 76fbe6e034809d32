"""Class-balanced random selection of real images (the random baseline and the ``random`` method)."""

from __future__ import annotations

import torch

from dcregistry.errors import ValidationError


def class_balanced_indices(
    labels: torch.Tensor,
    per_class: int,
    generator: torch.Generator,
    num_classes: int | None = None,
) -> torch.Tensor:
    """Pick ``per_class`` random indices of every class; int64 ``[K * per_class]``.

    The result is grouped by class (class 0's picks first, then class 1's ...), in random order
    within each class. Classes are ``0..num_classes-1`` when ``num_classes`` is given (a class with
    no image is then an error), else the labels present. The same ``generator`` state gives the
    same indices (one ``randperm`` per class, drawn on the CPU in class order). A class with fewer
    than ``per_class`` images raises :class:`~dcregistry.errors.ValidationError`.
    """
    if per_class < 1:
        raise ValidationError("per_class", f"must be at least 1, got {per_class}")
    labels = labels.detach().to("cpu").reshape(-1).long()
    classes = range(num_classes) if num_classes is not None else labels.unique().tolist()
    picks = []
    for c in classes:
        idx = torch.nonzero(labels == c, as_tuple=False).reshape(-1)
        if idx.numel() < per_class:
            raise ValidationError(
                "per_class",
                f"class {c} has {idx.numel()} images, fewer than the {per_class} requested",
                "lower the IPC",
            )
        perm = torch.randperm(idx.numel(), generator=generator)[:per_class]
        picks.append(idx[perm])
    if not picks:
        return torch.empty(0, dtype=torch.long)
    return torch.cat(picks)


RANDOM_REAL_STREAM = "random-real"


def random_real_indices(
    labels: torch.Tensor, ipc: int, seed: int, num_classes: int | None = None
) -> torch.Tensor:
    """THE class-balanced random real subset of a run seed: ``ipc`` indices per class.

    Both the ``random`` condensation method and the evaluation baseline call this, so the same
    seed over the same training labels picks the same images. The stream is derived from
    ``(seed, "random-real")`` and nothing else.
    """
    from harness.engine.seeding import generator  # engine/seeding is torch-only, no cycle

    return class_balanced_indices(labels, ipc, generator(seed, RANDOM_REAL_STREAM), num_classes)


VALIDATION_FRACTION = 0.1
VALIDATION_STREAM = "validation-split"


def validation_split(
    labels: torch.Tensor, num_classes: int, fraction: float = VALIDATION_FRACTION
) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed stratified validation split of a TRAINING split: ``(train_idx, val_idx)``.

    Per class, ``max(1, round(fraction * n_c))`` images go to validation, chosen by one
    ``randperm`` per class from the fixed stream ``(0, "validation-split")`` -- the same split
    for every run seed and method, so validation curves are comparable. Both index lists are
    sorted. The test split is never involved.
    """
    from harness.engine.seeding import generator

    if not 0.0 < fraction < 1.0:
        raise ValidationError("fraction", f"must be in (0, 1), got {fraction}")
    labels = labels.detach().to("cpu").reshape(-1).long()
    gen = generator(0, VALIDATION_STREAM)
    val = []
    for c in range(num_classes):
        idx = torch.nonzero(labels == c, as_tuple=False).reshape(-1)
        k = max(1, round(fraction * idx.numel()))
        if idx.numel() <= k:
            raise ValidationError(
                "labels",
                f"class {c} has {idx.numel()} training images, too few to hold out a validation split",
            )
        val.append(idx[torch.randperm(idx.numel(), generator=gen)[:k]])
    val_idx = torch.cat(val).sort().values
    keep = torch.ones(labels.numel(), dtype=torch.bool)
    keep[val_idx] = False
    return torch.nonzero(keep, as_tuple=False).reshape(-1), val_idx
