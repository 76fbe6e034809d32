"""Train R seeds at once as one vectorized ensemble (``torch.func`` vmap over stacked weights).

Each member keeps its own seed-derived init, shuffling and augmentation draws, so its numbers
match the sequential loop up to float reassociation. SGD/Adam are elementwise, so one optimizer
over the stacked weights updates every member exactly as its own optimizer would. Useful where
one small network leaves the device idle (CUDA); on a 2-core CPU it is slower (measured).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from harness.augment import Augmentation
from harness.protocols import Protocol

from .seeding import generator
from .trainer import RunResult, TestSet, TrainSet, build_model, epoch_batches, loss_fn, schedule, training_lr

_STATEFUL = (nn.modules.batchnorm._BatchNorm, nn.Dropout)


def supports_ensemble(model: nn.Module) -> bool:
    """Batch norm (running stats) and dropout (random masks) do not vectorize faithfully."""
    return not any(isinstance(m, _STATEFUL) for m in model.modules())


def train_ensemble(
    protocol: Protocol,
    train: TrainSet,
    test: TestSet,
    aug: Augmentation,
    seeds: list[int],
    on_epoch: Callable[[int], None] | None = None,
) -> list[RunResult]:
    """Train one network per seed as a vmap ensemble; returns one RunResult per seed."""
    t0 = time.perf_counter()
    device = train.images.device
    models = [build_model(protocol, train, s, device) for s in seeds]
    if not supports_ensemble(models[0]):
        raise ValueError(f"{protocol.arch} has batch norm or dropout; use the sequential strategy")
    params, buffers = stack_module_state(models)
    params = {k: v.detach().requires_grad_() for k, v in params.items()}
    base = copy.deepcopy(models[0]).to("meta")
    del models

    def forward(p, b, x):
        return functional_call(base, (p, b), (x,))

    batched = vmap(forward)
    gens = [generator(s, "data") for s in seeds]
    criterion = loss_fn(protocol, train.soft)
    n = len(train.images)
    losses = torch.zeros(len(seeds))
    for _, opt in schedule(protocol, params.values(), training_lr(protocol, train), on_epoch):
        plans = [epoch_batches(n, protocol.batch_size, g) for g in gens]
        for step in range(len(plans[0])):
            xs, ys = [], []
            for plan, g in zip(plans, gens, strict=True):
                idx = plan[step].to(device)
                xs.append(aug(train.images[idx], g))
                ys.append(train.targets[idx])
            out = batched(params, buffers, torch.stack(xs))
            # Sum of per-member mean losses: each member's gradient is its own loss's gradient.
            losses = torch.stack([criterion(o, y) for o, y in zip(out.unbind(0), ys, strict=True)])
            loss = losses.sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    correct = torch.zeros(len(seeds), dtype=torch.long)
    with torch.no_grad():
        for start in range(0, len(test.labels), protocol.test_batch_size):
            x = test.images[start : start + protocol.test_batch_size]
            out = vmap(forward, in_dims=(0, 0, None))(params, buffers, x)
            correct += (out.argmax(-1) == test.labels[start : start + len(x)]).sum(-1).cpu()
    seconds = (time.perf_counter() - t0) / len(seeds)
    final = losses.detach().cpu().tolist()
    return [
        RunResult(s, int(c) / max(1, len(test.labels)), f, seconds)
        for s, c, f in zip(seeds, correct, final, strict=True)
    ]
