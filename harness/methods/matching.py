"""Shared pieces of the synthesis methods: gradient-matching distances, the per-class real
batches and Siamese DSA draws, functional network helpers, BatchNorm handling, and a few
config/state utilities.

Distances (DC's ``match_loss``, REFERENCE.md "Condensation methods"):

* ``ours``: per layer, reshape the gradient to ``(out, -1)`` (conv ``[O, I, h, w]`` -> ``[O, I*h*w]``,
  layernorm ``[C, H, W]`` -> ``[C, H*W]``, linear as is) and sum ``1 - cos`` over the rows;
  1-D gradients (biases, norm affine parameters) contribute 0;
* ``mse``: squared Euclidean distance of the concatenated flattened gradients (all parameters);
* ``cos``: ``1 - cos`` of the concatenated flattened gradients (all parameters).

The cosine denominators add ``1e-6`` as the published code does.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harness.methods.base import MethodOptionError

DIS_METRICS = ("ours", "mse", "cos")
EPS = 1e-6


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``, else MethodOptionError naming the option."""
    if value not in choices:
        raise MethodOptionError(f"option {name}={value!r} is not one of {', '.join(choices)}")
    return value


def check_positive(name: str, value: float | int) -> None:
    """MethodOptionError unless ``value`` > 0."""
    if not value > 0:
        raise MethodOptionError(f"option {name} must be > 0, got {value!r}")


# --- distances ---------------------------------------------------------------------------------


def _rows(g: Tensor) -> Tensor | None:
    """A gradient as the ``(out, -1)`` matrix "ours" compares row by row (None for 1-D)."""
    if g.dim() <= 1:
        return None
    return g.reshape(g.shape[0], -1)


def match_distance(gw_syn: Sequence[Tensor], gw_real: Sequence[Tensor], metric: str = "ours") -> Tensor:
    """DC's distance between two lists of per-parameter gradients (one class)."""
    if metric == "ours":
        dis = gw_syn[0].new_zeros(())
        for gs, gr in zip(gw_syn, gw_real, strict=True):
            rs, rr = _rows(gs), _rows(gr)
            if rs is None:
                continue
            assert rr is not None  # the same parameter's gradient: as many dims as gs
            dis = dis + torch.sum(
                1 - torch.sum(rr * rs, dim=-1) / (torch.norm(rr, dim=-1) * torch.norm(rs, dim=-1) + EPS)
            )
        return dis
    vs = torch.cat([g.reshape(-1) for g in gw_syn])
    vr = torch.cat([g.reshape(-1) for g in gw_real])
    if metric == "mse":
        return torch.sum((vs - vr) ** 2)
    if metric == "cos":
        cos: Tensor = 1 - torch.sum(vr * vs) / (torch.norm(vr) * torch.norm(vs) + EPS)
        return cos
    raise MethodOptionError(f"unknown distance {metric!r} (known: {', '.join(DIS_METRICS)})")


def gradient_match_loss(
    net: nn.Module,
    real: Sequence[Tensor],
    syn: Sequence[Tensor],
    metric: str = "ours",
    real_loss: Callable[[Tensor, Tensor], Tensor] | None = None,
) -> Tensor:
    """DC's objective: the sum over classes ``c`` of :func:`match_distance` between the gradients
    (w.r.t. ``net``'s parameters) of the cross-entropy on ``syn[c]`` and on ``real[c]``, both
    labelled ``c`` (batches already augmented). Differentiable in ``syn``; ``real_loss(x, y)``
    replaces ``CE(net(x), y)`` for the real batches (the compiled path)."""
    params = list(net.parameters())
    dis = syn[0].new_zeros(())
    for c, (xr, xs) in enumerate(zip(real, syn, strict=True)):
        yr = torch.full((len(xr),), c, dtype=torch.long, device=xr.device)
        lr_ = real_loss(xr, yr) if real_loss is not None else ce(net(xr), yr)
        gw_real = [g.detach() for g in torch.autograd.grad(lr_, params)]
        ys = torch.full((len(xs),), c, dtype=torch.long, device=xs.device)
        gw_syn = torch.autograd.grad(ce(net(xs), ys), params, create_graph=True)
        dis = dis + match_distance(gw_syn, gw_real, metric)
    return dis


def distribution_match_loss(
    embed: Callable[[Tensor], Tensor], real: Sequence[Tensor], syn: Sequence[Tensor]
) -> Tensor:
    """DM's objective: the sum over classes of ``||mean embed(real[c]) - mean embed(syn[c])||^2``
    (batches already augmented; no gradient through the real side). All classes go through
    ``embed`` in one batch each, which equals the per-class calls for per-sample-normalised nets."""
    with torch.no_grad():
        er = embed(torch.cat(list(real)))
    es = embed(torch.cat(list(syn)))
    mr = torch.stack([e.mean(0) for e in torch.split(er, [len(x) for x in real])])
    ms = torch.stack([e.mean(0) for e in torch.split(es, [len(x) for x in syn])])
    return torch.sum((mr - ms) ** 2)


# --- data draws --------------------------------------------------------------------------------


def draw_real(ctx: Any, c: int, n: int, gen: torch.Generator) -> Tensor:
    """Indices of ``min(n, |class c|)`` random images of class ``c`` (DC's ``get_images``)."""
    idx: Tensor = ctx.class_indices(c)
    return idx[torch.randperm(len(idx), generator=gen)[:n].to(idx.device)]


def draw_class_batches(
    ctx: Any, n: int, gen: torch.Generator, dsa_strategy: str | None
) -> list[tuple[Tensor, Any]]:
    """Per class, in class order: (real indices, Siamese DSA sample for n=1 or None).

    The one place the per-class draws are made, so the batched implementations and the
    per-class reference loops consume the generator identically.
    """
    from harness.augment.dsa import sample_dsa

    shape = tuple(ctx.images.shape[1:])
    out = []
    for c in range(ctx.num_classes):
        idx = draw_real(ctx, c, n, gen)
        s = sample_dsa(1, dsa_strategy, gen, shape=shape) if dsa_strategy else None
        out.append((idx, s))
    return out


def siamese(x: Tensor, sample: Any) -> Tensor:
    """Apply a Siamese DSA sample (drawn for n=1) to the whole batch, or nothing."""
    if sample is None:
        return x
    from harness.augment.dsa import apply_dsa

    return apply_dsa(x, sample, broadcast=True)


# --- networks ----------------------------------------------------------------------------------


def has_batchnorm(net: nn.Module) -> bool:
    """Whether ``net`` has BatchNorm layers (DC then freezes their statistics)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


def set_bn_eval(net: nn.Module) -> None:
    """Put BatchNorm layers in eval mode (use, don't update, the running statistics)."""
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def params_of(net: nn.Module) -> dict[str, Tensor]:
    """The network's parameters by name (the tensors themselves)."""
    return dict(net.named_parameters())


def buffers_of(net: nn.Module) -> dict[str, Tensor]:
    return dict(net.named_buffers())


def functional_logits(net: nn.Module, params: dict[str, Tensor], x: Tensor) -> Tensor:
    """``net(x)`` with ``params`` in place of its parameters (buffers are the module's own)."""
    logits: Tensor = torch.func.functional_call(net, params, (x,))
    return logits


def ce(logits: Tensor, y: Tensor) -> Tensor:
    return F.cross_entropy(logits, y)


# --- configs and states ------------------------------------------------------------------------


def config_dict(cfg: Any) -> dict[str, Any]:
    """A config dataclass as a plain dict (what goes into method_config)."""
    return dataclasses.asdict(cfg)


def sgd_momentum_step(
    x: Tensor, grad: Tensor, buf: Tensor | None, lr: float, momentum: float
) -> Tensor | None:
    """torch.optim.SGD's update (no dampening, no Nesterov, no decay), in place on ``x``; returns the buffer."""
    with torch.no_grad():
        if momentum:
            buf = grad.clone() if buf is None else buf.mul_(momentum).add_(grad)
            x.add_(buf, alpha=-lr)
        else:
            x.add_(grad, alpha=-lr)
    return buf


def optimizer_state(opt: torch.optim.Optimizer, prefix: str) -> dict[str, Tensor]:
    """The momentum buffers of a single-group SGD optimizer as named tensors (for checkpoints)."""
    out: dict[str, Tensor] = {}
    for i, p in enumerate(opt.param_groups[0]["params"]):
        buf = opt.state.get(p, {}).get("momentum_buffer")
        if buf is not None:
            out[f"{prefix}.{i}.momentum_buffer"] = buf.detach().cpu().clone()
    return out


def load_optimizer_state(opt: torch.optim.Optimizer, sd: dict[str, Any], prefix: str) -> None:
    """Inverse of :func:`optimizer_state`."""
    for i, p in enumerate(opt.param_groups[0]["params"]):
        key = f"{prefix}.{i}.momentum_buffer"
        if key in sd:
            opt.state[p]["momentum_buffer"] = torch.as_tensor(sd[key]).to(p.device).clone()


def shuffled_batches(n: int, batch: int, gen: torch.Generator) -> list[Tensor]:
    """One shuffled epoch over ``n`` items in batches of ``batch`` (a DataLoader with shuffle=True)."""
    return list(torch.split(torch.randperm(n, generator=gen), batch))


# --- compiled single-backward passes -----------------------------------------------------------

_COMPILED: dict[tuple[Any, ...], Any] = {}


def compiled_loss(net: nn.Module, key: tuple[Any, ...]):
    """``f(params, x, y) -> CE(template(x; params), y)`` compiled with torch.compile, cached by ``key``.

    A copy of ``net`` (the template) only provides the architecture; the parameters are inputs, so one compiled graph
    serves every freshly initialised network of the same architecture. Single backward only
    (torch.compile does not support double backward); BatchNorm nets are not compiled (their
    running statistics are module state).
    """
    fn = _COMPILED.get(("loss",) + key)
    if fn is None:
        template = copy.deepcopy(net)

        def loss(params: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
            return F.cross_entropy(torch.func.functional_call(template, params, (x,)), y)

        fn = _with_fallback(torch.compile(loss), loss)
        _COMPILED[("loss",) + key] = fn
    return fn


def compiled_embed(net: nn.Module, key: tuple[Any, ...]):
    """``f(params, x) -> template.embed(x; params)`` compiled, cached by ``key`` (see :func:`compiled_loss`)."""
    fn = _COMPILED.get(("embed",) + key)
    if fn is None:
        view = EmbedView(copy.deepcopy(net))

        def embed(params: dict[str, Tensor], x: Tensor) -> Tensor:
            emb: Tensor = torch.func.functional_call(view, {f"net.{k}": v for k, v in params.items()}, (x,))
            return emb

        fn = _with_fallback(torch.compile(embed), embed)
        _COMPILED[("embed",) + key] = fn
    return fn


def _with_fallback(fast, eager):
    """``fast`` until it fails (no C++ compiler, an unsupported op...), then ``eager`` with a warning:
    both compute the same function, so results stay correct."""
    state = {"fn": fast}

    def call(*args):
        try:
            return state["fn"](*args)
        except Exception as exc:
            if state["fn"] is eager:
                raise
            import warnings

            warnings.warn(
                f"torch.compile failed ({type(exc).__name__}: {exc}); continuing in eager mode", stacklevel=2
            )
            state["fn"] = eager
            return eager(*args)

    return call


class EmbedView(nn.Module):
    """``forward = net.embed`` so functional_call can run the embedding alone."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        emb: Tensor = self.net.embed(x)  # type: ignore[operator]  # nn.Module attributes are typed Tensor | Module
        return emb


def arch_key(ctx: Any) -> tuple[Any, ...]:
    """What determines a network's architecture in a context (cache key for compiled graphs)."""
    return (ctx.model, tuple(ctx.images.shape[1:]), ctx.num_classes, str(ctx.device))
