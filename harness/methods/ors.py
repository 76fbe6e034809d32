"""Optimal random selection (ORS), the DC paper's baseline of its Table T12: draw ``candidates``
class-balanced uniformly random subsets of ``ipc`` real images per class, train a fresh network
(the run's ``model``) on each, score it on the VALIDATION split and keep the best subset.

The validation split is :func:`harness.data.validation_split` (10 % of each class of the training
split, the same for every seed and method): the loop holds it out of the images the method picks
from (:meth:`ORS.uses_validation`), so no candidate contains a validation image; the test split is
never loaded. Each candidate network is trained with the engine's
:func:`~harness.engine.evaluate.evaluate_sets` under the ``dc-noaug`` recipe (SGD momentum 0.9,
weight decay 5e-4, no augmentation, lr / 10 after pass ``epochs // 2 + 1``), ``epochs`` passes in
all; every candidate gets the same network seeds, so the scores differ by the subsets alone.

Draws from the run's generator, in order: the network seed, then the candidates one after the other
(candidate ``k`` is the same subset whatever ``candidates`` is, so a larger N only adds subsets).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import torch

from harness.methods.base import CondenseContext, MethodOptionError, SelectionMethod
from harness.methods.registry import METHODS

MAX_CANDIDATES = 10_000
MAX_EPOCHS = 10_000
MAX_RUNS = 100


@dataclass
class ORSConfig:
    """ORS's options: how many random subsets, and how each candidate's network is trained."""

    candidates: int = field(default=10, metadata={"help": "random class-balanced subsets drawn and scored"})
    epochs: int = field(
        default=50,
        metadata={"help": "training passes of each candidate's network (cheap; the dc-noaug recipe)"},
    )
    lr: float = field(
        default=0.01, metadata={"help": "SGD lr of the candidate networks (/10 after about half the passes)"}
    )
    batch_size: int = field(default=256, metadata={"help": "training batch of the candidate networks"})
    runs: int = field(
        default=1,
        metadata={"help": "networks per candidate (same seeds for all); the score is their mean"},
    )

    def validate(self) -> None:
        for name, hi in (("candidates", MAX_CANDIDATES), ("epochs", MAX_EPOCHS), ("runs", MAX_RUNS)):
            value = getattr(self, name)
            if not 1 <= value <= hi:
                raise MethodOptionError(f"ors option {name}={value}: must be between 1 and {hi}")
        if self.batch_size < 1:
            raise MethodOptionError(f"ors option batch_size={self.batch_size}: must be positive")
        if self.lr <= 0:
            raise MethodOptionError(f"ors option lr={self.lr}: must be positive")


def candidate_protocol(ctx: CondenseContext, cfg: ORSConfig, seed: int):
    """The protocol each candidate is trained and scored under: ``dc-noaug`` with the run's
    model, ``cfg.epochs`` passes in all (the DC loop runs E + 1), ``cfg.runs`` seeds from ``seed``."""
    import dataclasses

    from harness.protocols import load_protocol

    base = load_protocol("dc-noaug")
    return dataclasses.replace(
        base,
        name="ors-candidate",
        arch=ctx.model,
        epochs=cfg.epochs - 1,
        lr=cfg.lr,
        batch_size=cfg.batch_size,
        runs=cfg.runs,
        seed=seed,
    )


def _indices_digest(idx: torch.Tensor) -> str:
    return hashlib.sha256(idx.cpu().numpy().astype("<i8").tobytes()).hexdigest()


@METHODS.register("ors")
class ORS(SelectionMethod[ORSConfig]):
    description = "best of N random class-balanced real subsets by validation accuracy (DC paper's ORS)"

    Config = ORSConfig

    def uses_validation(self, cfg: ORSConfig) -> bool:
        return True

    def select(self, ctx: CondenseContext, cfg: ORSConfig, gen: torch.Generator):
        from harness.data import class_balanced_indices
        from harness.engine.evaluate import evaluate_sets, protocol_aug_factory
        from harness.engine.trainer import TestSet, TrainSet

        if ctx.val_images is None or ctx.val_labels is None:
            raise RuntimeError("ors needs the validation split (the loop holds it out: uses_validation)")
        net_seed = int(torch.randint(0, 2**31 - 1 - cfg.runs, (), generator=gen))
        protocol = candidate_protocol(ctx, cfg, net_seed)
        factory = protocol_aug_factory(protocol, ctx.space, ctx.dsa_strategy, ctx.image_size[1])
        val = TestSet(ctx.val_images, ctx.val_labels)
        # Sequential on CPU: the numbers do not depend on a timing-based strategy choice.
        strategy = "sequential" if ctx.device.type == "cpu" else "auto"
        total = cfg.candidates * cfg.runs * (protocol.epochs + 1)
        tick = ctx.progress(total, f"ors: {cfg.candidates} candidates") if ctx.progress else None
        scored: list[dict[str, Any]] = []
        best: tuple[int, float, torch.Tensor] | None = None
        for k in range(cfg.candidates):
            idx = class_balanced_indices(ctx.labels, ctx.ipc, gen, ctx.num_classes).to(ctx.labels.device)
            train = TrainSet(ctx.images[idx], ctx.labels[idx], ctx.num_classes)
            accs = evaluate_sets(train, val, protocol, factory, strategy=strategy, tick=tick).accuracies
            acc = sum(accs) / len(accs)
            scored.append(
                {
                    "candidate": k,
                    "validation_accuracy": acc,
                    "accuracies": accs,
                    "indices_sha256": _indices_digest(idx),
                }
            )
            if best is None or acc > best[1]:  # strict: a tie keeps the earlier candidate
                best = (k, acc, idx)
        assert best is not None  # candidates >= 1 (validated)
        info = {
            "selection": "best of N class-balanced uniform random subsets by validation accuracy",
            "candidates": scored,
            "chosen": best[0],
            "chosen_validation_accuracy": best[1],
            "scoring": {
                "split": "validation",
                "validation_images": len(ctx.val_labels),
                "accuracy": "final-epoch top-1 on the validation split, mean over runs",
            },
            # Not "network"/"embedding": the card would call it an embedding net.
            "candidate_net": {
                "net": ctx.model,
                "seeds": protocol.seeds,
                "recipe": "dc-noaug",
                "epochs": cfg.epochs,
                "optimizer": f"sgd lr {cfg.lr} momentum {protocol.momentum} weight_decay {protocol.weight_decay}",
                "schedule": "dc-step" if protocol.decay_epoch < protocol.epochs else "constant",
                "batch_size": cfg.batch_size,
                "augmentation": protocol.augmentation,
            },
        }
        return best[2], info
