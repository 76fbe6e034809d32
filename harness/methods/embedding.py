"""The embedding network of the selection methods: a fresh network trained on the whole training
set with the DC recipe (the engine's :func:`~harness.engine.trainer.fit`), then ``model.embed``.

Recipe: SGD lr 0.01, momentum 0.9, weight decay 5e-4, batch 256, no augmentation, cross-entropy
(``dc-noaug``'s optimizer), for ``epochs`` passes; with more than two passes the lr is divided by
10 after pass ``epochs // 2`` as in the DC schedule.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from harness.methods.base import CondenseContext, MethodOptionError

EMBED_BATCH = 512


def embedding_protocol(epochs: int, lr: float, batch_size: int):
    """``dc-noaug`` with ``epochs`` passes in all (the DC loop runs E + 1 passes)."""
    from harness.protocols import load_protocol

    base = load_protocol("dc-noaug")
    return dataclasses.replace(
        base, name="embedding-net", epochs=epochs - 1, lr=lr, batch_size=batch_size, runs=1
    )


def train_embedding_net(
    ctx: CondenseContext,
    epochs: int,
    lr: float,
    batch_size: int,
    gen: torch.Generator,
    on_step=None,
    label: str = "embedding net",
) -> tuple[nn.Module, dict[str, Any]]:
    """A ``ctx.model`` initialised from ``gen`` and trained ``epochs`` passes on all of ``ctx``'s
    images; returns it (eval mode) and the record of how it was made."""
    from harness.augment import create_augmentation
    from harness.engine.trainer import TrainSet, fit

    if epochs < 1:
        raise ValueError("the embedding net needs at least one training epoch")
    protocol = embedding_protocol(epochs, lr, batch_size)
    model = ctx.make_model(gen)
    train = TrainSet(ctx.images, ctx.labels, ctx.num_classes)
    tick = ctx.progress(epochs, label) if ctx.progress else None
    loss = fit(
        model,
        train,
        protocol,
        create_augmentation("none"),
        gen,
        on_step=on_step,
        on_epoch=(lambda ep: tick(1)) if tick else None,
    )
    model.eval()
    info = {
        "net": ctx.model,
        "parameters": sum(p.numel() for p in model.parameters()),
        "embed_dim": int(getattr(model, "embed_dim", 0)),
        "training": {
            "data": "all training images of the run",
            "epochs": epochs,
            "optimizer": f"sgd lr {lr} momentum {protocol.momentum} weight_decay {protocol.weight_decay}",
            "schedule": "dc-step" if epochs > 2 else "constant",
            "batch_size": batch_size,
            "augmentation": "none",
            "final_loss": round(loss, 6),
        },
    }
    return model, info


@torch.no_grad()
def embed_images(model: nn.Module, images: Tensor, batch_size: int = EMBED_BATCH) -> Tensor:
    """``model.embed`` of every image (eval mode), float32 ``[N, D]``."""
    model.eval()
    return torch.cat(
        [
            model.embed(images[s : s + batch_size]).float()  # type: ignore[operator]  # Module attrs: Tensor | Module
            for s in range(0, len(images), batch_size)
        ]
    )


def raw_features(images: Tensor) -> Tensor:
    """Flattened pixels as features (the raw-pixel variants)."""
    return images.reshape(len(images), -1).float()


@dataclass
class EmbeddingOptions:
    """Options shared by the selections that embed images (herding, kcenter)."""

    embed: str = field(default="convnet", metadata={"help": "convnet (trained net) or raw pixels"})
    embed_epochs: int = field(default=1, metadata={"help": "training passes of the embedding net"})
    embed_lr: float = 0.01
    embed_batch: int = 256

    def validate(self) -> None:
        if self.embed not in ("convnet", "raw"):
            raise MethodOptionError(f"option embed={self.embed!r}: must be convnet or raw")
        if min(self.embed_epochs, self.embed_batch) < 1 or self.embed_lr <= 0:
            raise MethodOptionError("options embed_epochs, embed_batch and embed_lr must be positive")


def selection_features(
    ctx: CondenseContext, cfg: EmbeddingOptions, gen: torch.Generator, label: str
) -> tuple[Tensor, dict[str, Any]]:
    """Per-image features (raw pixels or the trained net's embedding) and how they were made."""
    if cfg.embed == "raw":
        return raw_features(ctx.images), {"net": "raw pixels"}
    model, info = train_embedding_net(ctx, cfg.embed_epochs, cfg.embed_lr, cfg.embed_batch, gen, label=label)
    return embed_images(model, ctx.images), info
