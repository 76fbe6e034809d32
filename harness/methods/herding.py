"""Herding selection: per class, greedily add the image whose embedding brings the running mean of
the selected embeddings closest to the class mean (Welling 2009; the DC paper's baseline). The
embeddings come from a ConvNet trained on the whole training set (``embed=raw``: raw pixels)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from harness.methods.base import CondenseContext, SelectionMethod
from harness.methods.embedding import EmbeddingOptions, selection_features
from harness.methods.registry import METHODS


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


@dataclass
class HerdingConfig(EmbeddingOptions):
    """Herding's options: its embedding network's (:class:`EmbeddingOptions`)."""


@METHODS.register("herding")
class Herding(SelectionMethod[HerdingConfig]):
    description = "per-class greedy herding toward the class mean of ConvNet embeddings"

    Config = HerdingConfig

    def select(self, ctx: CondenseContext, cfg: HerdingConfig, gen: torch.Generator):
        info: dict[str, Any] = {"selection": "greedy herding per class (float64)"}
        feats, info["embedding"] = selection_features(ctx, cfg, gen, "herding embedding net")
        feats = feats.cpu().double()
        picks = []
        for c in range(ctx.num_classes):
            idx = ctx.class_indices(c).cpu()
            picks.append(idx[torch.tensor(herd(feats[idx], ctx.ipc))])
        return torch.cat(picks), info
