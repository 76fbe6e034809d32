"""dcregistry: condensed datasets as versioned, verifiable, self-describing artifacts.

Importing this package is cheap (no torch); names are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

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

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dcregistry' has no attribute {name!r}")
