"""Train one fresh network on a (condensed) training set, then test it once: the DC recipe.

The loop reproduces the published evaluation exactly, quirks included: ``epochs + 1`` passes
over the data; after pass ``epochs // 2 + 1`` the lr is multiplied by ``decay`` and the
optimizer is re-created (momentum reset); the reported number is the final-epoch test
accuracy (never a max over epochs).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Optimizer

from harness.augment import Augmentation
from harness.models import create_model
from harness.protocols import Protocol

from .seeding import generator


@dataclass
class TrainSet:
    """Training tensors in the artifact's pixel space, on the target device."""

    images: Tensor  # float32 [N, C, H, W]
    targets: Tensor  # int64 [N] (hard) or float [N, K] (soft: logits)
    num_classes: int
    lr: float | None = None  # learned lr stored with the set (MTT/DATM)

    @property
    def soft(self) -> bool:
        return self.targets.dtype.is_floating_point


@dataclass
class TestSet:
    """Test tensors in the same pixel space as the training set."""

    images: Tensor
    labels: Tensor


@dataclass
class RunResult:
    """The outcome of one seed."""

    seed: int
    accuracy: float
    final_train_loss: float
    seconds: float


def training_lr(protocol: Protocol, train: TrainSet) -> float:
    """The lr a run starts with: the protocol's, or the artifact's learned one."""
    if protocol.lr_source == "artifact":
        if train.lr is None:
            from dcregistry.errors import ProtocolError

            raise ProtocolError(
                f"protocol {protocol.name} trains with the artifact's learned lr, "
                "but the artifact has no 'lr' tensor; use --protocol dsa"
            )
        return float(train.lr)
    return protocol.lr


def make_optimizer(protocol: Protocol, params, lr: float) -> torch.optim.Optimizer:
    """SGD (momentum, weight decay) or Adam as the protocol says."""
    if protocol.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=protocol.momentum, weight_decay=protocol.weight_decay)
    return torch.optim.Adam(params, lr=lr, weight_decay=protocol.weight_decay)


def loss_fn(protocol: Protocol, soft: bool) -> Callable[[Tensor, Tensor], Tensor]:
    """Cross-entropy for hard labels; soft cross-entropy against softmax(targets) for soft."""
    if protocol.loss == "ce" or (protocol.loss == "auto" and not soft):
        return F.cross_entropy
    return lambda out, logits: -(logits.softmax(-1) * out.log_softmax(-1)).sum(-1).mean()


def build_model(protocol: Protocol, train: TrainSet, seed: int, device: torch.device) -> nn.Module:
    """The fresh network of run ``seed`` (initialised from that seed alone)."""
    _, c, h, w = train.images.shape
    return create_model(protocol.arch, c, train.num_classes, (h, w), generator=generator(seed, "init")).to(
        device
    )


@torch.no_grad()
def test_accuracy(model: nn.Module, test: TestSet, batch_size: int) -> float:
    """Top-1 accuracy of ``model`` on ``test`` (eval mode)."""
    model.eval()
    correct = 0
    for start in range(0, len(test.labels), batch_size):
        out = model(test.images[start : start + batch_size])
        correct += int((out.argmax(-1) == test.labels[start : start + batch_size]).sum())
    return correct / max(1, len(test.labels))


def epoch_batches(n: int, batch_size: int, gen: torch.Generator) -> list[Tensor]:
    """A shuffled partition of ``range(n)`` into batches (the DataLoader's shuffle=True)."""
    return list(torch.randperm(n, generator=gen).split(batch_size))


def schedule(
    protocol: Protocol, params: Iterable[Tensor], lr: float, on_epoch: Callable[[int], None] | None = None
) -> Iterator[tuple[int, Optimizer]]:
    """The published schedule: yields (epoch, optimizer) for E+1 passes; after pass E//2+1 the
    lr is multiplied by ``decay`` and the optimizer re-created (momentum reset), then
    ``on_epoch(epoch)`` is called."""
    params = list(params)
    opt = make_optimizer(protocol, params, lr)
    for ep in range(protocol.epochs + 1):
        yield ep, opt
        if ep == protocol.decay_epoch:
            lr *= protocol.decay
            opt = make_optimizer(protocol, params, lr)
        if on_epoch is not None:
            on_epoch(ep)


def compiled(model: nn.Module) -> Callable[[Tensor], Tensor]:
    """``torch.compile`` the training forward (graphs are reused by later instances of the
    same architecture); falls back to eager, with a warning, where compilation fails."""
    fast = torch.compile(model, dynamic=False)

    def forward(x: Tensor) -> Tensor:
        nonlocal fast
        try:
            out: Tensor = fast(x)
            return out
        except Exception as exc:  # no C++ compiler, unsupported op...: eager is always correct
            if fast is model:
                raise
            warnings.warn(
                f"torch.compile failed ({type(exc).__name__}); training in eager mode", stacklevel=2
            )
            fast = model
            eager: Tensor = model(x)
            return eager

    return forward


StepHook = Callable[[int, Tensor, Tensor], None]
"""``on_step(epoch, batch_indices, outputs)``: called after every optimizer step with the batch's
indices into the training set and the (detached) network outputs of that step."""


def fit(
    model: nn.Module,
    train: TrainSet,
    protocol: Protocol,
    aug: Augmentation,
    gen: torch.Generator,
    on_step: StepHook | None = None,
    on_epoch: Callable[[int], None] | None = None,
    forward: Callable[[Tensor], Tensor] | None = None,
) -> float:
    """Train ``model`` on ``train`` with the protocol's optimizer, schedule, batches and loss.

    ``gen`` drives the shuffles and augmentation draws; ``forward`` (default ``model``) may be a
    compiled wrapper. Returns the last step's training loss.
    """
    device = train.images.device
    forward = forward or model
    criterion = loss_fn(protocol, train.soft)
    loss = torch.zeros(())
    for ep, opt in schedule(protocol, model.parameters(), training_lr(protocol, train), on_epoch):
        model.train()
        for idx in epoch_batches(len(train.images), protocol.batch_size, gen):
            idx = idx.to(device)
            x = aug(train.images[idx], gen)
            out = forward(x)
            loss = criterion(out, train.targets[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if on_step is not None:
                on_step(ep, idx, out.detach())
    return float(loss.detach())


def train_one(
    protocol: Protocol,
    train: TrainSet,
    test: TestSet,
    aug: Augmentation,
    seed: int,
    on_epoch: Callable[[int], None] | None = None,
    compile: bool = False,
) -> RunResult:
    """Train and test one network for ``seed``; deterministic per seed on CPU.

    ``compile`` trains through ``torch.compile`` (same math, fused kernels); testing is eager.
    """
    t0 = time.perf_counter()
    model = build_model(protocol, train, seed, train.images.device)
    forward = compiled(model) if compile else None
    final_loss = fit(model, train, protocol, aug, generator(seed, "data"), on_epoch=on_epoch, forward=forward)
    acc = test_accuracy(model, test, protocol.test_batch_size)
    return RunResult(seed, acc, final_loss, time.perf_counter() - t0)
