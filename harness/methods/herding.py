"""Herding selection: per class, greedily add the image whose embedding brings the running mean of
the selected embeddings closest to the class mean (Welling 2009; the DC paper's baseline). The
embeddings come from a ConvNet trained on the whole training set (``embed=raw``: raw pixels)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from harness.methods import METHODS
from harness.methods.base import CondenseContext, MethodOptionError, SelectionMethod
from harness.methods.embedding import embed_images, raw_features, train_embedding_net


def herd(feats: torch.Tensor, k: int) -> list[int]:
    """Greedy herding on ``feats`` [n, D]: ``k`` row indices, in the order they were added."""
    mu = feats.mean(0)
    total = torch.zeros_like(mu)
    chosen: list[int] = []
    avail = torch.ones(len(feats), dtype=torch.bool)
    for step in range(1, k + 1):
        dist = ((mu - (total + feats) / step) ** 2).sum(1)
        dist[~avail] = float("inf")
        i = int(dist.argmin())
        chosen.append(i)
        avail[i] = False
        total += feats[i]
    return chosen


@METHODS.register("herding")
class Herding(SelectionMethod):
    description = "per-class greedy herding toward the class mean of ConvNet embeddings"

    @dataclass
    class Config:
        embed: str = field(default="convnet", metadata={"help": "convnet (trained net) or raw pixels"})
        embed_epochs: int = field(default=1, metadata={"help": "training passes of the embedding net"})
        embed_lr: float = 0.01
        embed_batch: int = 256

        def validate(self) -> None:
            if self.embed not in ("convnet", "raw"):
                raise MethodOptionError(f"option embed={self.embed!r}: must be convnet or raw")
            if min(self.embed_epochs, self.embed_batch) < 1 or self.embed_lr <= 0:
                raise MethodOptionError("herding options embed_epochs, embed_batch and embed_lr "
                                        "must be positive")

    def select(self, ctx: CondenseContext, cfg: Config, gen: torch.Generator):
        info: dict = {"selection": "greedy herding per class (float64)"}
        if cfg.embed == "raw":
            feats = raw_features(ctx.images)
            info["embedding"] = {"net": "raw pixels"}
        else:
            model, info["embedding"] = train_embedding_net(ctx, cfg.embed_epochs, cfg.embed_lr,
                                                           cfg.embed_batch, gen, label="herding embedding net")
            feats = embed_images(model, ctx.images)
        feats = feats.cpu().double()
        picks = []
        for c in range(ctx.num_classes):
            idx = ctx.class_indices(c).cpu()
            picks.append(idx[torch.tensor(herd(feats[idx], ctx.ipc))])
        return torch.cat(picks), info
