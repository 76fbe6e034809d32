"""Condensation methods by canonical name: selections (random, herding, kcenter, forgetting) and
syntheses (dc, dsa, dm, mtt). Interface in :mod:`harness.methods.base`, shared loop in
:mod:`harness.methods.loop`.

A method registers itself with one decorator line in its own file (``@METHODS.register("name")``
on its class); this module imports each method module once, one line per module.
"""

from __future__ import annotations

from harness.registry import Registry

METHODS: Registry[type] = Registry("method")

# One import line per method module (each registers into METHODS on import).
from harness.methods import random  # noqa: E402,F401
from harness.methods import herding  # noqa: E402,F401
from harness.methods import kcenter  # noqa: E402,F401
from harness.methods import forgetting  # noqa: E402,F401


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
