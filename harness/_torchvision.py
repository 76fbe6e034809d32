"""Import torchvision's pure-Python parts even where its compiled extension cannot load.

PyPI's torchvision wheels are CUDA builds; next to a CPU-only torch, ``import torchvision`` fails
with "operator torchvision::nms does not exist" while registering fake/autograd kernels for its
C++ detection ops. We use none of those ops (only transforms.v2, datasets, models), so on that
specific failure we stub the two registration modules and import again.
"""

from __future__ import annotations

import importlib
import sys
import types

_STUBBED = ("torchvision._meta_registrations", "torchvision._autograd_registrations")


def import_torchvision() -> types.ModuleType:
    """Return the ``torchvision`` module, working around a compiled extension that cannot load."""
    if "torchvision" in sys.modules:
        return sys.modules["torchvision"]
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as exc:
        if "torchvision::" not in str(exc):
            raise
    for name in list(sys.modules):
        if name == "torchvision" or name.startswith("torchvision."):
            del sys.modules[name]
    for name in _STUBBED:
        sys.modules[name] = types.ModuleType(name)
    return importlib.import_module("torchvision")


def transforms_v2() -> types.ModuleType:
    """Return ``torchvision.transforms.v2``."""
    import_torchvision()
    return importlib.import_module("torchvision.transforms.v2")
