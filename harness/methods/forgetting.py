"""Forgetting selection (Toneva et al., ICLR 2019): train a network on the whole training set and
count, per example, forgetting events (correct at one presentation, wrong at the next); examples
never classified correctly count as most forgotten. Per class the most-forgotten examples are
kept (ties broken at random from the run's stream)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from harness.methods.base import CondenseContext, MethodOptionError, SelectionMethod
from harness.methods.embedding import train_embedding_net
from harness.methods.registry import METHODS


class ForgettingCounter:
    """The ``on_step`` hook of :func:`~harness.engine.trainer.fit` that counts forgetting events."""

    def __init__(self, n: int, targets: torch.Tensor):
        self.targets = targets
        self.prev = torch.zeros(n, dtype=torch.bool, device=targets.device)
        self.learned = torch.zeros(n, dtype=torch.bool, device=targets.device)
        self.forgets = torch.zeros(n, dtype=torch.long, device=targets.device)
        self.presented = torch.zeros(n, dtype=torch.long, device=targets.device)

    def __call__(self, epoch: int, idx: torch.Tensor, outputs: torch.Tensor) -> None:
        correct = outputs.argmax(-1) == self.targets[idx]
        self.forgets[idx] += (self.prev[idx] & ~correct).long()
        self.learned[idx] |= correct
        self.prev[idx] = correct
        self.presented[idx] += 1

    def scores(self) -> torch.Tensor:
        """Forgetting counts, with never-learned examples above every learned one."""
        big = int(self.forgets.max()) + 1 if len(self.forgets) else 1
        return torch.where(self.learned, self.forgets, torch.full_like(self.forgets, big))


@dataclass
class ForgettingConfig:
    """Forgetting's options: the training run whose forgetting events are counted."""

    epochs: int = field(default=20, metadata={"help": "training passes counted"})
    lr: float = 0.01
    batch_size: int = 256

    def validate(self) -> None:
        if min(self.epochs, self.batch_size) < 1 or self.lr <= 0:
            raise MethodOptionError("forgetting options epochs, batch_size and lr must be positive")


@METHODS.register("forgetting")
class Forgetting(SelectionMethod[ForgettingConfig]):
    description = "most-forgotten real images per class while training on the full set (Toneva et al.)"

    Config = ForgettingConfig

    def select(self, ctx: CondenseContext, cfg: ForgettingConfig, gen: torch.Generator):
        counter = ForgettingCounter(len(ctx.labels), ctx.labels)
        _, net = train_embedding_net(
            ctx, cfg.epochs, cfg.lr, cfg.batch_size, gen, on_step=counter, label="forgetting: training"
        )
        scores = counter.scores().cpu()
        picks = []
        for c in range(ctx.num_classes):
            idx = ctx.class_indices(c).cpu()
            # Random order first, then a stable sort by score: ties fall in random order.
            perm = torch.randperm(len(idx), generator=gen)
            order = torch.sort(scores[idx][perm], descending=True, stable=True).indices
            picks.append(idx[perm[order[: ctx.ipc]]])
        learned = counter.learned.cpu()
        info = {
            "network": net,
            "counting": "events correct -> wrong between consecutive presentations (training batches)",
            "never_learned": int((~learned).sum()),
            "max_forgetting": int(counter.forgets.max()),
            "mean_forgetting": round(float(counter.forgets.float().mean()), 4),
        }
        return torch.cat(picks), info
