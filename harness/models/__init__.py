"""The network zoo, by canonical name (the DC / DC-Bench definitions; see REFERENCE.md "Networks").

Every model is an :class:`~harness.models.layers.EmbedNet`: ``model.embed(x)`` returns the
penultimate features ``[N, D]`` (used by DM, K-Center, herding), ``model.classifier`` is the final
``nn.Linear`` and ``model(x) == model.classifier(model.embed(x))``.

Names: ``convnet`` and its variants (``convnet-d1`` .. ``convnet-d5``, ``convnet-w32/64/128/256``,
``convnet-relu/sigmoid/leakyrelu/swish``, ``convnet-nn/bn/ln/in/gn``, ``convnet-np/mp/ap``, plus
any combination such as ``convnet-d4-w64-bn-mp``; grammar in :mod:`harness.models.convnet`),
``mlp``, ``lenet``, ``alexnet``, ``vgg11``, ``vgg11-bn``, ``resnet18``, ``resnet18-bn``,
``resnet152``, ``vit``.

A family registers each name with one line in its own file: ``MODELS.register(name, factory)``
(``MODELS`` lives in :mod:`harness.models.registry`),
where ``factory(channels, num_classes, image_size: tuple[int, int], **overrides) -> nn.Module``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

# The family modules register into MODELS (harness.models.registry) on import: one line each.
from harness.models import alexnet, convnet, lenet, mlp, resnet, vgg, vit  # noqa: F401
from harness.models.convnet import ConvNetConfig, parse_convnet_name
from harness.models.layers import EmbedNet, ModelConfigError, to_hw
from harness.models.registry import MODELS

__all__ = [
    "MODELS",
    "ConvNetConfig",
    "EmbedNet",
    "ModelConfigError",
    "create_model",
    "list_models",
    "model_factory",
    "parse_convnet_name",
]


def list_models() -> list[str]:
    """The registered canonical names, sorted (combined ConvNet names are accepted but not listed)."""
    return MODELS.names()


def model_factory(name: str) -> Callable[..., nn.Module]:
    """The factory for ``name`` without building anything (use it to validate an ``--arch``).

    Registered names come from :data:`MODELS`; other ``convnet-...`` names are parsed with
    :func:`parse_convnet_name`. Raises UnknownNameError (naming the bad option for ConvNets).
    """
    if name in MODELS:
        return MODELS.get(name)
    if name.lower().startswith("convnet-"):
        return convnet.convnet_factory(parse_convnet_name(name))
    return MODELS.get(name)  # raises UnknownNameError with close matches


def create_model(
    name: str,
    channels: int,
    num_classes: int,
    image_size: int | tuple[int, int],
    *,
    generator: torch.Generator | None = None,
    **overrides,
) -> nn.Module:
    """Build the network ``name`` for ``channels`` x ``image_size`` inputs and ``num_classes`` outputs.

    Args:
        name: a canonical name (see :func:`list_models`) or a combined ConvNet name such as
            ``convnet-d4-w64-bn-mp``; case-insensitive.
        channels: input channels (1 or 3 usually).
        num_classes: width of the final Linear.
        image_size: ``H`` for square inputs or ``(H, W)``. Shape-dependent details follow it
            (ConvNet/VGG pad 3 on 1-channel input; ConvNet depth 3/4/5 for <=32/<=64/larger;
            the final Linear's input size).
        generator: if given, the weights are drawn reproducibly from it (one seed is drawn from
            ``generator``, which advances it, and the model is built on the CPU under a forked,
            re-seeded CPU default RNG), and the global RNG state is left as it was. The global
            RNG is swapped while building, so do not draw from it concurrently in another thread.
            Without it, construction uses the global default RNG (PyTorch default init).
        **overrides: family options, e.g. ``depth``/``width``/``act``/``norm``/``pool`` for
            ConvNets (:class:`ConvNetConfig` fields), ``norm`` for VGG/ResNet, ``width`` for
            MLP, ``dim``/``depth``/``heads``/... for ViT.

    Raises:
        UnknownNameError: unknown name, ConvNet option, activation, norm or pool.
        ModelConfigError: the network does not fit the input (e.g. ``convnet-d4`` on 8x8).
    """
    factory = model_factory(name)
    hw = to_hw(image_size)
    if channels < 1 or num_classes < 1:
        raise ModelConfigError(f"channels and num_classes must be >= 1, got {channels}, {num_classes}")
    if generator is None:
        return factory(channels, num_classes, hw, **overrides)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
    with torch.random.fork_rng(devices=[]), torch.device("cpu"):
        torch.default_generator.manual_seed(seed)
        return factory(channels, num_classes, hw, **overrides)
