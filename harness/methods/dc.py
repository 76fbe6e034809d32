"""DC: dataset condensation with gradient matching (Zhao, Mopuri & Bilen, ICLR 2021).

Per outer iteration a freshly initialised network; ``outer_loop`` times: per class, the distance
between the gradient of the loss on a real batch (``batch_real`` images of the class) and on the
synthetic images of the class, summed over classes, one SGD step on the images (lr 0.1, momentum
0.5); then, except after the last outer step, ``inner_loop`` epochs of network training on the
synthetic set (plain SGD lr 0.01, batch 256: the official code dropped its momentum 0.5 in
July 2021, before the commit we compare against, 53f63a67). (outer, inner) by
IPC: (1,1) 1, (10,50) 10, (20,25) 20, (30,20) 30, (40,15) 40, (50,10) 50. BatchNorm nets: running
statistics from ``bn_size`` real images per class, then frozen for the matching. The reported loss
is the mean per class and outer step, as the official code prints it.

Faster than the official per-class loop with the same arithmetic: the single-backward passes (the
real-batch gradients and the inner-loop training) run through one ``torch.compile``d functional
graph shared by every fresh network of the architecture (``compile=true``, the default; not for
BatchNorm nets), and no graph is built for the BatchNorm statistics pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor

from harness.methods.base import CondenseContext, ConfigT, MethodOptionError, SynthesisMethod, SynthesisState
from harness.methods.matching import (
    DIS_METRICS,
    arch_key,
    ce,
    check_choice,
    check_positive,
    compiled_loss,
    draw_class_batches,
    draw_real,
    gradient_match_loss,
    has_batchnorm,
    set_bn_eval,
    sgd_momentum_step,
    shuffled_batches,
    siamese,
)
from harness.methods.registry import METHODS

# (outer_loop, inner_loop) per IPC, from the official code's get_loops.
LOOPS: dict[int, tuple[int, int]] = {
    1: (1, 1),
    10: (10, 50),
    20: (20, 25),
    30: (30, 20),
    40: (40, 15),
    50: (50, 10),
}


@dataclass
class DCConfig:
    """DC's published defaults (the official main.py)."""

    iterations: int = field(default=1000, metadata={"help": "outer iterations"})
    lr_img: float = field(default=0.1, metadata={"help": "SGD lr on the synthetic pixels"})
    momentum_img: float = field(default=0.5, metadata={"help": "SGD momentum on the pixels"})
    lr_net: float = field(default=0.01, metadata={"help": "SGD lr of the inner-loop network updates"})
    momentum_net: float = field(default=0.0, metadata={"help": "SGD momentum of the network updates"})
    batch_real: int = field(default=256, metadata={"help": "real images per class per outer step"})
    batch_train: int = field(default=256, metadata={"help": "batch of the inner-loop training"})
    bn_size: int = field(default=16, metadata={"help": "real images per class for BatchNorm statistics"})
    outer_loop: int | None = field(default=None, metadata={"help": "outer steps (None: per-IPC table)"})
    inner_loop: int | None = field(default=None, metadata={"help": "inner epochs (None: per-IPC table)"})
    dis_metric: str = field(default="ours", metadata={"help": "gradient distance: ours | mse | cos"})
    compile: bool = field(default=True, metadata={"help": "torch.compile the single-backward passes"})

    def validate(self) -> None:
        for name in ("iterations", "lr_img", "lr_net", "batch_real", "batch_train", "bn_size"):
            check_positive(name, getattr(self, name))
        for name in ("momentum_img", "momentum_net"):
            if not 0 <= getattr(self, name) < 1:
                raise MethodOptionError(f"option {name} must be in [0, 1), got {getattr(self, name)}")
        for name in ("outer_loop", "inner_loop"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise MethodOptionError(f"option {name} must be >= 1, got {v}")
        check_choice("dis_metric", self.dis_metric, DIS_METRICS)


def resolve_loops(cfg: DCConfig, ipc: int) -> DCConfig:
    """Fill outer_loop/inner_loop from the per-IPC table (MethodOptionError for an IPC not in it)."""
    if cfg.outer_loop is not None and cfg.inner_loop is not None:
        return cfg
    if ipc not in LOOPS:
        raise MethodOptionError(
            f"the published loops are defined for IPC {', '.join(map(str, LOOPS))}, not {ipc}; "
            "set both outer_loop and inner_loop"
        )
    outer, inner = LOOPS[ipc]
    return replace(cfg, outer_loop=cfg.outer_loop or outer, inner_loop=cfg.inner_loop or inner)


def syn_class_indices(labels: Tensor, num_classes: int) -> list[Tensor]:
    """Indices of each class's synthetic images."""
    return [torch.nonzero(labels == c, as_tuple=False).reshape(-1) for c in range(num_classes)]


class ImageMethod(SynthesisMethod[ConfigT]):
    """Shared state handling: learnable images with an SGD-momentum buffer."""

    def init_state(
        self, ctx: CondenseContext, cfg: ConfigT, images: Tensor, labels: Tensor, gen: torch.Generator
    ) -> SynthesisState:
        img = images.detach().to(ctx.device, torch.float32).clone().requires_grad_(True)
        return {"images": img, "labels": labels.detach().to(ctx.device, torch.long).clone()}

    def state_dict(self, state: SynthesisState) -> dict[str, Any]:
        sd = {"images": state["images"].detach().cpu().clone(), "labels": state["labels"].cpu().clone()}
        if (mom := state.get("momentum")) is not None:
            sd["momentum"] = mom.detach().cpu().clone()
        return sd

    def load_state_dict(self, ctx: CondenseContext, cfg: ConfigT, sd: dict[str, Any]) -> SynthesisState:
        state = self.init_state(ctx, cfg, sd["images"], sd["labels"], torch.Generator())
        if sd.get("momentum") is not None:
            state["momentum"] = torch.as_tensor(sd["momentum"]).to(ctx.device, torch.float32).clone()
        return state

    def update_images(self, state: SynthesisState, grad: Tensor, lr: float, momentum: float) -> None:
        state["momentum"] = sgd_momentum_step(state["images"], grad, state.get("momentum"), lr, momentum)


@METHODS.register("dc")
class DC(ImageMethod[DCConfig]):
    description = "gradient matching (Zhao et al., ICLR 2021)"
    Config = DCConfig
    siamese_dsa = False  # DSA subclass: Siamese augmentation of the real and synthetic batches

    def configure(self, cfg: DCConfig, ctx: CondenseContext) -> DCConfig:
        return resolve_loops(cfg, ctx.ipc)

    def strategy(self, ctx: CondenseContext) -> str | None:
        return ctx.dsa_strategy if self.siamese_dsa else None

    def step(
        self, ctx: CondenseContext, cfg: DCConfig, state: SynthesisState, iteration: int, gen: torch.Generator
    ) -> float:
        assert cfg.outer_loop is not None  # configure() resolved it (resolve_loops)
        img, lab = state["images"], state["labels"]
        k = ctx.num_classes
        strategy = self.strategy(ctx)
        net = ctx.make_model(gen)
        net.train()
        params = list(net.parameters())
        names = [n for n, _ in net.named_parameters()]
        opt_net = torch.optim.SGD(params, lr=cfg.lr_net, momentum=cfg.momentum_net)
        bn = has_batchnorm(net)
        loss_fn = None
        if cfg.compile and not bn:
            key = arch_key(ctx)
            loss_fn = compiled_loss(net, key)
        syn_idx = syn_class_indices(lab, k)
        total = 0.0
        for ol in range(cfg.outer_loop):
            if bn:  # running statistics from a real batch, then frozen for the matching
                real_bn = torch.cat([ctx.images[draw_real(ctx, c, cfg.bn_size, gen)] for c in range(k)])
                net.train()
                with torch.no_grad():
                    net(real_bn)
                set_bn_eval(net)
            draws = draw_class_batches(ctx, cfg.batch_real, gen, strategy)
            real = [siamese(ctx.images[idx], sample) for idx, sample in draws]
            syn = [siamese(img[syn_idx[c]], sample) for c, (_, sample) in enumerate(draws)]
            real_loss = (
                (lambda x, y: loss_fn(dict(zip(names, params, strict=False)), x, y)) if loss_fn else None
            )
            loss = gradient_match_loss(net, real, syn, cfg.dis_metric, real_loss)
            (g_img,) = torch.autograd.grad(loss, img)
            self.update_images(state, g_img, cfg.lr_img, cfg.momentum_img)
            total += float(loss.detach())
            if ol == cfg.outer_loop - 1:
                break
            self.train_net(ctx, cfg, net, names, params, opt_net, loss_fn, img.detach().clone(), lab, gen)
        return total / (k * cfg.outer_loop)

    def train_net(
        self, ctx, cfg, net, names, params, opt_net, loss_fn, syn: Tensor, lab: Tensor, gen: torch.Generator
    ) -> None:
        """``inner_loop`` epochs of SGD on the synthetic set (DSA-augmented for DSA)."""
        from harness.augment.dsa import dsa_augment

        strategy = self.strategy(ctx)
        net.train()
        for _ in range(cfg.inner_loop):
            for b in shuffled_batches(len(syn), cfg.batch_train, gen):
                b = b.to(syn.device)
                x = syn[b]
                if strategy:
                    x = dsa_augment(x, strategy, gen)
                loss = (
                    loss_fn(dict(zip(names, params, strict=False)), x, lab[b])
                    if loss_fn
                    else ce(net(x), lab[b])
                )
                opt_net.zero_grad(set_to_none=True)
                loss.backward()
                opt_net.step()
