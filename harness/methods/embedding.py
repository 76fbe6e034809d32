"""The embedding network of the selection methods: a fresh network trained on the whole training
set with the DC recipe (the engine's :func:`~harness.engine.trainer.fit`), then ``model.embed``.

Recipe: SGD lr 0.01, momentum 0.9, weight decay 5e-4, batch 256, no augmentation, cross-entropy
(``dc-noaug``'s optimizer), for ``epochs`` passes; with more than two passes the lr is divided by
10 after pass ``epochs // 2`` as in the DC schedule.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor, nn

from harness.methods.base import CondenseContext

EMBED_BATCH = 512


def embedding_protocol(epochs: int, lr: float, batch_size: int):
    """``dc-noaug`` with ``epochs`` passes in all (the DC loop runs E + 1 passes)."""
    from harness.protocols import load_protocol

    base = load_protocol("dc-noaug")
    return dataclasses.replace(base, name="embedding-net", epochs=epochs - 1, lr=lr,
                               batch_size=batch_size, runs=1)


def train_embedding_net(ctx: CondenseContext, epochs: int, lr: float, batch_size: int,
                        gen: torch.Generator, on_step=None, label: str = "embedding net"
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
    loss = fit(model, train, protocol, create_augmentation("none"), gen, on_step=on_step,
               on_epoch=(lambda ep: tick(1)) if tick else None)
    model.eval()
    info = {"net": ctx.model, "parameters": sum(p.numel() for p in model.parameters()),
            "embed_dim": int(getattr(model, "embed_dim", 0)),
            "training": {"data": "all training images of the run", "epochs": epochs,
                         "optimizer": f"sgd lr {lr} momentum {protocol.momentum} "
                                      f"weight_decay {protocol.weight_decay}",
                         "schedule": "dc-step" if epochs > 2 else "constant",
                         "batch_size": batch_size, "augmentation": "none",
                         "final_loss": round(loss, 6)}}
    return model, info


@torch.no_grad()
def embed_images(model: nn.Module, images: Tensor, batch_size: int = EMBED_BATCH) -> Tensor:
    """``model.embed`` of every image (eval mode), float32 ``[N, D]``."""
    model.eval()
    return torch.cat([model.embed(images[s:s + batch_size]).float()
                      for s in range(0, len(images), batch_size)])


def raw_features(images: Tensor) -> Tensor:
    """Flattened pixels as features (the raw-pixel variants)."""
    return images.reshape(len(images), -1).float()
