"""Condensation methods by canonical name: selections (random, herding, kcenter, forgetting, ors) and
syntheses (dc, dsa, dm, mtt). Interface in :mod:`harness.methods.base`, shared loop in
:mod:`harness.methods.loop`.

A method registers itself with one decorator line in its own file (``@METHODS.register("name")``
on its class); this module imports each method module once, one line per module.
"""

from __future__ import annotations

# One import line per method module (each registers into METHODS, harness.methods.registry, on import).
from harness.methods import (
    dc,  # noqa: F401
    dm,  # noqa: F401
    dsa,  # noqa: F401
    forgetting,  # noqa: F401
    herding,  # noqa: F401
    kcenter,  # noqa: F401
    mtt,  # noqa: F401
    ors,  # noqa: F401
    random,  # noqa: F401
)
from harness.methods.registry import METHODS


def get_method(name: str):
    """An instance of the method registered as ``name`` (UnknownNameError with close matches)."""
    cls = METHODS.get(name)
    inst = cls()
    inst.name = name.lower()  # the canonical (registered) name, recorded in artifacts
    return inst


def list_methods() -> list[str]:
    """Registered method names, sorted."""
    return METHODS.names()


__all__ = ["METHODS", "get_method", "list_methods"]
