"""dcregistry: condensed datasets as versioned, verifiable, self-describing artifacts.

Importing this package is cheap (no torch); names are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what editors and type checkers see; at run time the names load lazily
    from .artifact import Artifact, build_artifact, load_artifact, open_artifact
    from .card import render_card
    from .catalog import get_dataset_info
    from .refs import parse_ref
    from .store import open_ref
    from .store.local import LocalStore

__version__ = "0.1.0"

_LAZY = {
    "Artifact": "dcregistry.artifact",
    "build_artifact": "dcregistry.artifact",
    "open_artifact": "dcregistry.artifact",
    "load_artifact": "dcregistry.artifact",
    "render_card": "dcregistry.card",
    "parse_ref": "dcregistry.refs",
    "LocalStore": "dcregistry.store.local",
    "open_ref": "dcregistry.store",
    "get_dataset_info": "dcregistry.catalog",
}

__all__ = [
    "__version__",
    "Artifact",
    "build_artifact",
    "open_artifact",
    "load_artifact",
    "render_card",
    "parse_ref",
    "LocalStore",
    "open_ref",
    "get_dataset_info",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dcregistry' has no attribute {name!r}")
