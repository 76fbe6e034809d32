"""Published condensed sets: the shipped catalog (``catalog.toml``) and ``dcreg fetch``.

``load_catalog`` / ``get_published`` read and check the catalog; ``fetch_published`` downloads a
set (HTTPS with resume, Google Drive via gdown, Hugging Face Hub), checks sha256s, converts it
with the safe importers and verifies the artifacts. Importing this package loads no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .catalog import CATALOG_ENV, CatalogError, PublishedFile, PublishedSet, get_published, load_catalog

__all__ = [
    "CATALOG_ENV",
    "CatalogError",
    "PublishedFile",
    "PublishedSet",
    "get_published",
    "load_catalog",
    "fetch_published",
]

if TYPE_CHECKING:
    from .fetch import fetch_published


def __getattr__(name: str) -> Any:  # fetch_published, imported on first use
    if name == "fetch_published":
        from .fetch import fetch_published

        return fetch_published
    raise AttributeError(f"module 'dcregistry.published' has no attribute {name!r}")
