"""K-Center selection, DC-Bench's revision: a ConvNet trained for ONE epoch on the whole training
set embeds every image; per class, scikit-learn k-means with ``ipc`` clusters (max 300
iterations); the real image nearest each center is kept. ``embed=raw`` clusters raw pixels."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from harness.methods import METHODS
from harness.methods.base import CondenseContext, MethodOptionError, SelectionMethod
from harness.methods.embedding import embed_images, raw_features, train_embedding_net


@METHODS.register("kcenter")
class KCenter(SelectionMethod):
    description = "real images nearest per-class k-means centers of ConvNet embeddings (DC-Bench)"

    @dataclass
    class Config:
        embed: str = field(default="convnet", metadata={"help": "convnet (trained net) or raw pixels"})
        embed_epochs: int = field(default=1, metadata={"help": "training passes of the embedding net"})
        embed_lr: float = 0.01
        embed_batch: int = 256
        max_iter: int = field(default=300, metadata={"help": "k-means iterations"})
        n_init: int = field(default=10, metadata={"help": "k-means restarts (scikit-learn's historical default)"})

        def validate(self) -> None:
            if self.embed not in ("convnet", "raw"):
                raise MethodOptionError(f"option embed={self.embed!r}: must be convnet or raw")
            if min(self.embed_epochs, self.embed_batch, self.max_iter, self.n_init) < 1 or self.embed_lr <= 0:
                raise MethodOptionError("kcenter options embed_epochs, embed_batch, max_iter, "
                                        "n_init and embed_lr must be positive")

    def select(self, ctx: CondenseContext, cfg: Config, gen: torch.Generator):
        from sklearn.cluster import KMeans

        info: dict = {"clustering": {"algorithm": "sklearn.cluster.KMeans", "n_clusters": ctx.ipc,
                                     "max_iter": cfg.max_iter, "n_init": cfg.n_init}}
        if cfg.embed == "raw":
            feats = raw_features(ctx.images)
            info["embedding"] = {"net": "raw pixels"}
        else:
            model, info["embedding"] = train_embedding_net(ctx, cfg.embed_epochs, cfg.embed_lr,
                                                           cfg.embed_batch, gen, label="kcenter embedding net")
            feats = embed_images(model, ctx.images)
        feats = feats.cpu().double().numpy()
        picks = []
        for c in range(ctx.num_classes):
            idx = ctx.class_indices(c).cpu()
            x = feats[idx.numpy()]
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
