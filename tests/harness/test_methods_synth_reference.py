"""Straightforward reference loops for DC/DSA and DM, written the way the official code does it
(per class: real forward, ``autograd.grad``, synthetic forward, ``autograd.grad(create_graph)``,
``match_loss``; ``torch.optim.SGD`` on the images; the inner loop as a DataLoader-style epoch),
drawing the same random numbers as :mod:`harness.methods.dc` / :mod:`harness.methods.dm`.

Used as the baseline by ``bench/condense_speed.py`` and by the equivalence tests. Also holds the
digits context the synthesis tests share.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from harness.augment.dsa import dsa_augment
from harness.methods.base import CondenseContext
from harness.methods.matching import (
    ce,
    draw_class_batches,
    draw_real,
    has_batchnorm,
    match_distance,
    set_bn_eval,
    shuffled_batches,
    siamese,
)


@lru_cache(maxsize=4)
def _digits(image_size: int):
    from dcregistry.catalog import get_dataset_info
    from harness.data import load_dataset, normalized_space, to_pixel_space

    info = get_dataset_info("digits")
    train = load_dataset("digits", "train", image_size=image_size)
    return info, to_pixel_space(train.images, normalized_space(info)), train.labels


def digits_context(
    ipc: int = 1, image_size: int = 32, model: str = "convnet", seed: int = 0
) -> CondenseContext:
    """A CondenseContext over digits' whole train split (normalized) on the CPU."""
    from harness.data import TensorSpace, normalized_space

    info, images, labels = _digits(image_size)
    return CondenseContext(
        dataset="digits",
        images=images,
        labels=labels,
        num_classes=info.num_classes,
        ipc=ipc,
        model=model,
        device=torch.device("cpu"),
        space=TensorSpace.of(normalized_space(info)),
        seed=seed,
        dsa_strategy=info.dsa_strategy,
    )


def real_init(ctx: CondenseContext, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``ipc`` random real images per class, class-ordered labels."""
    idx = torch.cat([draw_real(ctx, c, ctx.ipc, gen) for c in range(ctx.num_classes)])
    return ctx.images[idx].clone(), ctx.labels[idx].clone()


class ReferenceDC:
    """DC (``dsa=False``) / DSA (``dsa=True``) as a per-class loop with torch.optim optimizers."""

    def __init__(
        self, ctx: CondenseContext, cfg, images: torch.Tensor, labels: torch.Tensor, dsa: bool = False
    ):
        self.ctx, self.cfg, self.dsa = ctx, cfg, dsa
        self.image_syn = images.clone().requires_grad_(True)
        self.label_syn = labels.clone()
        self.optimizer_img = torch.optim.SGD([self.image_syn], lr=cfg.lr_img, momentum=cfg.momentum_img)

    def step(self, gen: torch.Generator) -> float:
        ctx, cfg = self.ctx, self.cfg
        k = ctx.num_classes
        strategy = ctx.dsa_strategy if self.dsa else None
        net = ctx.make_model(gen)
        net.train()
        net_parameters = list(net.parameters())
        optimizer_net = torch.optim.SGD(net.parameters(), lr=cfg.lr_net, momentum=cfg.momentum_net)
        loss_avg = 0.0
        for ol in range(cfg.outer_loop):
            if has_batchnorm(net):
                img_real = torch.cat([ctx.images[draw_real(ctx, c, cfg.bn_size, gen)] for c in range(k)])
                net.train()
                net(img_real)
                set_bn_eval(net)
            draws = draw_class_batches(ctx, cfg.batch_real, gen, strategy)
            loss = torch.tensor(0.0, device=ctx.device)
            for c in range(k):
                idx, sample = draws[c]
                img_real = siamese(ctx.images[idx], sample)
                lab_real = torch.ones((img_real.shape[0],), dtype=torch.long, device=ctx.device) * c
                gw_real = torch.autograd.grad(ce(net(img_real), lab_real), net_parameters)
                gw_real = [g.detach().clone() for g in gw_real]
                sel = self.label_syn == c
                img_syn = siamese(self.image_syn[sel], sample)
                gw_syn = torch.autograd.grad(
                    ce(net(img_syn), self.label_syn[sel]), net_parameters, create_graph=True
                )
                loss = loss + match_distance(gw_syn, gw_real, cfg.dis_metric)
            self.optimizer_img.zero_grad()
            loss.backward()
            self.optimizer_img.step()
            loss_avg += loss.item()
            if ol == cfg.outer_loop - 1:
                break
            image_syn_train = self.image_syn.detach().clone()
            net.train()
            for _ in range(cfg.inner_loop):
                for b in shuffled_batches(len(image_syn_train), cfg.batch_train, gen):
                    b = b.to(ctx.device)
                    x = image_syn_train[b]
                    if strategy:
                        x = dsa_augment(x, strategy, gen)
                    loss_net = ce(net(x), self.label_syn[b])
                    optimizer_net.zero_grad()
                    loss_net.backward()
                    optimizer_net.step()
        return loss_avg / (k * cfg.outer_loop)


class ReferenceDM:
    """DM as the official per-class loop (frozen net, per-class embeddings and means)."""

    def __init__(self, ctx: CondenseContext, cfg, images: torch.Tensor, labels: torch.Tensor):
        self.ctx, self.cfg = ctx, cfg
        self.image_syn = images.clone().requires_grad_(True)
        self.label_syn = labels.clone()
        self.optimizer_img = torch.optim.SGD([self.image_syn], lr=cfg.lr_img, momentum=cfg.momentum_img)

    def step(self, gen: torch.Generator) -> float:
        ctx, cfg = self.ctx, self.cfg
        net = ctx.make_model(gen)
        net.train()
        for p in net.parameters():
            p.requires_grad = False
        draws = draw_class_batches(ctx, cfg.batch_real, gen, ctx.dsa_strategy if cfg.dsa else None)
        loss = torch.tensor(0.0, device=ctx.device)
        for c in range(ctx.num_classes):
            idx, sample = draws[c]
            img_real = siamese(ctx.images[idx], sample)
            img_syn = siamese(self.image_syn[self.label_syn == c], sample)
            output_real = net.embed(img_real).detach()
            output_syn = net.embed(img_syn)
            loss = loss + torch.sum((torch.mean(output_real, dim=0) - torch.mean(output_syn, dim=0)) ** 2)
        self.optimizer_img.zero_grad()
        loss.backward()
        self.optimizer_img.step()
        return loss.item() / ctx.num_classes
