"""K-Center selection, DC-Bench's revision: a ConvNet trained for ONE epoch on the whole training
set embeds every image; per class, scikit-learn k-means with ``ipc`` clusters (max 300
iterations); the real image nearest each center is kept. ``embed=raw`` clusters raw pixels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from harness.methods.base import CondenseContext, MethodOptionError, SelectionMethod
from harness.methods.embedding import EmbeddingOptions, selection_features
from harness.methods.registry import METHODS


@dataclass
class KCenterConfig(EmbeddingOptions):
    """K-Center's options: the embedding network's and k-means'."""

    max_iter: int = field(default=300, metadata={"help": "k-means iterations"})
    n_init: int = field(default=10, metadata={"help": "k-means restarts (scikit-learn's historical default)"})

    def validate(self) -> None:
        super().validate()
        if min(self.max_iter, self.n_init) < 1:
            raise MethodOptionError("kcenter options max_iter and n_init must be positive")


@METHODS.register("kcenter")
class KCenter(SelectionMethod[KCenterConfig]):
    description = "real images nearest per-class k-means centers of ConvNet embeddings (DC-Bench)"

    Config = KCenterConfig

    def select(self, ctx: CondenseContext, cfg: KCenterConfig, gen: torch.Generator):
        from sklearn.cluster import KMeans

        info: dict[str, Any] = {
            "clustering": {
                "algorithm": "sklearn.cluster.KMeans",
                "n_clusters": ctx.ipc,
                "max_iter": cfg.max_iter,
                "n_init": cfg.n_init,
            }
        }
        feats, info["embedding"] = selection_features(ctx, cfg, gen, "kcenter embedding net")
        feats_np = feats.cpu().double().numpy()
        picks = []
        for c in range(ctx.num_classes):
            idx = ctx.class_indices(c).cpu()
            x = feats_np[idx.numpy()]
            seed = int(torch.randint(0, 2**31 - 1, (), generator=gen))
            km = KMeans(n_clusters=ctx.ipc, max_iter=cfg.max_iter, n_init=cfg.n_init, random_state=seed)
            km.fit(x)
            d = torch.cdist(torch.from_numpy(km.cluster_centers_), torch.from_numpy(x))  # [ipc, n_c]
            chosen: list[int] = []
            for row in d:  # nearest real image per center; a duplicate takes the next nearest
                for j in row.argsort().tolist():
                    if j not in chosen:
                        chosen.append(j)
                        break
            picks.append(idx[torch.tensor(chosen)])
        return torch.cat(picks), info
