"""DM: dataset condensation with distribution matching (Zhao & Bilen, WACV 2023).

Per iteration a freshly initialised, frozen network; per class one Siamese DSA draw applied to a
real batch (``batch_real`` images) and to the class's synthetic images; loss = sum over classes of
``||mean embed(real_c) - mean embed(syn_c)||^2``; one SGD step on the pixels (lr 1.0, momentum
0.5); 20000 iterations; real init. The reported loss is the mean per class (the official print).

Faster than the official per-class loop with the same arithmetic: the real images of all classes
go through the network in one no-grad forward and the synthetic images in one forward/backward,
through a ``torch.compile``d functional embedding shared by every fresh network of the
architecture (``compile=true``). The official code does the same concatenation for BatchNorm
nets; for the default per-sample-normalised ConvNet both are the same computation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from harness.methods.base import CondenseContext, MethodOptionError, SynthesisState
from harness.methods.dc import ImageMethod, syn_class_indices
from harness.methods.matching import (
    arch_key,
    check_positive,
    compiled_embed,
    distribution_match_loss,
    draw_class_batches,
    has_batchnorm,
    siamese,
)
from harness.methods.registry import METHODS


@dataclass
class DMConfig:
    """DM's published defaults (the official main_DM.py)."""

    iterations: int = field(default=20000, metadata={"help": "iterations"})
    lr_img: float = field(default=1.0, metadata={"help": "SGD lr on the synthetic pixels"})
    momentum_img: float = field(default=0.5, metadata={"help": "SGD momentum on the pixels"})
    batch_real: int = field(default=256, metadata={"help": "real images per class per iteration"})
    dsa: bool = field(default=True, metadata={"help": "Siamese DSA on the real and synthetic batches"})
    compile: bool = field(default=True, metadata={"help": "torch.compile the embedding network"})

    def validate(self) -> None:
        for name in ("iterations", "lr_img", "batch_real"):
            check_positive(name, getattr(self, name))
        if not 0 <= self.momentum_img < 1:
            raise MethodOptionError(f"option momentum_img must be in [0, 1), got {self.momentum_img}")


@METHODS.register("dm")
class DM(ImageMethod[DMConfig]):
    description = "distribution matching (Zhao & Bilen, WACV 2023)"
    Config = DMConfig

    def step(
        self, ctx: CondenseContext, cfg: DMConfig, state: SynthesisState, iteration: int, gen: torch.Generator
    ) -> float:
        img, lab = state["images"], state["labels"]
        k = ctx.num_classes
        net = ctx.make_model(gen)
        net.train()
        for p in net.parameters():
            p.requires_grad_(False)
        if cfg.compile and not has_batchnorm(net):
            fn = compiled_embed(net, arch_key(ctx))
            params = dict(net.named_parameters())

            def embed(x):
                return fn(params, x)
        else:
            embed = net.embed  # type: ignore[assignment]  # nn.Module attributes are typed Tensor | Module
        draws = draw_class_batches(ctx, cfg.batch_real, gen, ctx.dsa_strategy if cfg.dsa else None)
        syn_idx = syn_class_indices(lab, k)
        real = [siamese(ctx.images[idx], s) for idx, s in draws]
        syn = [siamese(img[syn_idx[c]], s) for c, (_, s) in enumerate(draws)]
        loss = distribution_match_loss(embed, real, syn)
        (g,) = torch.autograd.grad(loss, img)
        self.update_images(state, g, cfg.lr_img, cfg.momentum_img)
        return float(loss.detach()) / k
