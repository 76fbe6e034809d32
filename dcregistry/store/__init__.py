"""Stores of versioned artifacts and reference resolution.

``open_ref`` turns any reference (a local artifact directory, ``ns/name[@v3|@tag|@sha256:..]``
in a local store, or ``hf://datasets/ORG/NAME``) into an :class:`~dcregistry.artifact.Artifact`;
``get_store`` maps a ``--store`` value to a store: the embedded local store
(:mod:`dcregistry.store.local`) or a Hub store (:mod:`dcregistry.store.hub`: the Hugging Face Hub
or a ``dcreg serve`` endpoint).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UserError
from ..refs import Ref, parse_ref
from .base import (EVAL_KIND, GcReport, PushResult, RefLike, Store, VerifyReport, VersionCheck,
                   VersionInfo)
from .local import LocalStore, default_root

if TYPE_CHECKING:
    from ..artifact import Artifact

__all__ = ["Store", "RefLike", "VerifyReport", "VersionCheck", "LocalStore", "VersionInfo", "PushResult", "GcReport", "EVAL_KIND", "default_root",
           "get_store", "open_ref", "store_for", "HUB_UNAVAILABLE", "STORE_ENV"]

#: Kept for callers of older versions; the Hub store exists now (dcregistry.store.hub).
HUB_UNAVAILABLE = "the Hugging Face Hub store needs huggingface_hub installed"
#: Environment variable naming the default store (a --store value).
STORE_ENV = "DCREG_STORE"


def get_store(spec: str | Path | Store | None = None) -> Store:
    """The store a ``--store`` value names (None: ``$DCREG_STORE``, else the local default).

    "local": the default root ($DCREG_HOME or ~/.cache/dcreg); a directory path: a local store
    rooted there; "hf"/"hub": the Hugging Face Hub ($HF_ENDPOINT); an http(s) URL: a Hub-API
    endpoint such as ``dcreg serve``."""
    if isinstance(spec, Store):
        return spec
    if spec is None or str(spec) == "":
        spec = os.environ.get(STORE_ENV) or None
    if spec is None or str(spec) == "local":
        return LocalStore()
    text = str(spec)
    from .hub import HubStore, is_hub_spec

    if is_hub_spec(text):
        if text.startswith("hf://"):
            raise UserError(f"store {text!r}: name the endpoint ('hf' or an http(s) URL); "
                            "hf://datasets/ORG/NAME is a reference, not a store")
        return HubStore(None if text in ("hf", "hub") else text)
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"store {text}: not a directory (give 'local', 'hf', a URL or a store "
                        "directory)")
    return LocalStore(path)


def store_for(ref: str | Ref | None, spec: str | Path | Store | None = None) -> Store:
    """The store that holds ``ref``: ``hf://`` references live on a Hub (the given Hub store,
    else $HF_ENDPOINT); anything else in ``get_store(spec)``."""
    text = str(ref) if ref is not None else ""
    if text.startswith("hf://"):
        store = get_store(spec) if spec is not None or os.environ.get(STORE_ENV) else None
        from .hub import HubStore

        return store if isinstance(store, HubStore) else HubStore()
    return get_store(spec)


def open_ref(ref: str | Ref, store: Store | str | None = None, verify: bool = True) -> "Artifact":
    """Open the artifact ``ref`` names: a directory, a version in ``store`` (default: local or
    $DCREG_STORE), or ``hf://datasets/ORG/NAME@rev`` on the Hub."""
    r = parse_ref(ref) if isinstance(ref, str) else ref
    if r.kind == "path":
        from ..artifact import open_artifact

        return open_artifact(r.path, verify=verify)
    return store_for(str(r), store).open(r, verify=verify)
