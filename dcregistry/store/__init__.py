"""Stores of versioned artifacts and reference resolution.

``open_ref`` turns any reference (a local artifact directory, ``ns/name[@v3|@tag|@sha256:..]``
in a local store, or ``hf://datasets/ORG/NAME``) into an :class:`~dcregistry.artifact.Artifact`;
``get_store`` maps a ``--store`` value to a store. Only the embedded local store exists in this
version (see :mod:`dcregistry.store.local`).
"""

from __future__ import annotations

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
           "get_store", "open_ref", "HUB_UNAVAILABLE"]

HUB_UNAVAILABLE = ("the Hugging Face Hub store is not available in this version of dcregistry; "
                   "use the local store (ns/name refs, --store local or --store DIR)")


def get_store(spec: str | Path | LocalStore | None = None) -> LocalStore:
    """The store a ``--store`` value names.

    None or "local": the default root ($DCREG_HOME or ~/.cache/dcreg); a directory path: a
    local store rooted there; "hub"/"hf://...": a UserError (not available in this version)."""
    if isinstance(spec, LocalStore):
        return spec
    if spec is None or str(spec) in ("", "local"):
        return LocalStore()
    text = str(spec)
    if text == "hub" or text.startswith("hf://"):
        raise UserError(f"--store {text}: {HUB_UNAVAILABLE}")
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"--store {text}: not a directory (give 'local' or a store directory)")
    return LocalStore(path)


def open_ref(ref: str | Ref, store: LocalStore | str | None = None, verify: bool = True) -> "Artifact":
    """Open the artifact ``ref`` names: a directory, or a version in ``store`` (default local store)."""
    r = parse_ref(ref) if isinstance(ref, str) else ref
    if r.kind == "path":
        from ..artifact import open_artifact

        return open_artifact(r.path, verify=verify)
    if r.kind == "hub":
        raise UserError(f"{r}: {HUB_UNAVAILABLE}")
    return get_store(store).open(r, verify=verify)
