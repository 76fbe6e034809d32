"""Stores of versioned artifacts and reference resolution.

Every store implements :class:`~dcregistry.store.base.Store` (reading) and the capability
interfaces it has (:class:`~.base.WritableStore`, :class:`~.base.AnnotatingStore`,
:class:`~.base.MaintainableStore`; a command asks with ``store.require(...)``). The CLI and the
harness reach stores only through :func:`get_store` (a ``--store`` value -> a store) and :func:`open_ref` /
:func:`resolve_ref` (a reference string -> an artifact / a version). The embedded local store is
:class:`~dcregistry.store.local.LocalStore`; other kinds (the Hugging Face Hub, a served store)
register a factory with :func:`register_store`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InvalidReferenceError, StoreUnavailableError
from ..refs import Ref, parse_ref
from ..registry import Registry
from .base import (
    EVAL_KIND,
    AnnotatingStore,
    GcReport,
    MaintainableStore,
    PushResult,
    ReadableStore,
    RefLike,
    Store,
    VerifyReport,
    VersionCheck,
    VersionInfo,
    WritableStore,
)
from .layout import default_root
from .local import LocalStore

if TYPE_CHECKING:
    from ..artifact import Artifact

__all__ = [
    "Store",
    "ReadableStore",
    "WritableStore",
    "AnnotatingStore",
    "MaintainableStore",
    "RefLike",
    "VerifyReport",
    "VersionCheck",
    "LocalStore",
    "VersionInfo",
    "PushResult",
    "GcReport",
    "EVAL_KIND",
    "default_root",
    "get_store",
    "open_ref",
    "resolve_ref",
    "Resolved",
    "STORE_KINDS",
    "StoreKind",
    "register_store",
    "HUB_UNAVAILABLE",
    "StoreUnavailableError",
    "store_for",
    "STORE_ENV",
]

#: Environment variable naming the default store (a --store value).
STORE_ENV = "DCREG_STORE"

HUB_UNAVAILABLE = (
    "the Hugging Face Hub store is not available in this installation; use the "
    "local store (ns/name references, or a store directory)"
)


@dataclass(frozen=True)
class StoreKind:
    """A kind of store other than local: which ``--store`` values it takes and how to open one."""

    matches: Callable[[str], bool]
    factory: Callable[[str], Store]


#: Store kinds other than local, by name (one registration line each, beside the factory).
STORE_KINDS: Registry[StoreKind] = Registry("store kind")


def register_store(name: str, matches: Callable[[str], bool], factory: Callable[[str], Store]) -> None:
    """Make :func:`get_store` build ``factory(spec)`` for every store spec ``matches`` accepts
    (e.g. ``lambda s: s == "hub" or s.startswith("hf://")``)."""
    STORE_KINDS.register(name, StoreKind(matches, factory))


def _hub_spec(text: str) -> bool:
    return text == "hub" or text.startswith("hf://")


def get_store(spec: str | Path | Store | None = None) -> Store:
    """The store a store spec names.

    None: ``$DCREG_STORE`` if set; None or "local": the default local root ($DCREG_HOME or
    ~/.cache/dcreg); a registered kind ("hf"/"hub": the Hugging Face Hub, an http(s) URL: a
    Hub-API server such as ``dcreg serve``); otherwise a directory path: a local store there."""
    if isinstance(spec, Store):
        return spec
    if spec is None or str(spec) == "":
        spec = os.environ.get(STORE_ENV) or None
    if spec is None or str(spec) == "local":
        return LocalStore()
    text = str(spec)
    for kind in STORE_KINDS.values():
        if kind.matches(text):
            return kind.factory(text)
    if _hub_spec(text):
        raise StoreUnavailableError(f"store {text}: {HUB_UNAVAILABLE}")
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise InvalidReferenceError(f"store {text}: not a directory (give 'local' or a store directory)")
    return LocalStore(path)


@dataclass(frozen=True)
class Resolved:
    """What a reference string means: a directory (``path``) or a store version (``store`` and
    ``info``)."""

    ref: Ref
    path: Path | None = None
    store: Store | None = None
    info: VersionInfo | None = None

    @property
    def label(self) -> str:
        """``ns/name@vN`` for a version, the path for a directory."""
        return self.info.ref if self.info is not None else str(self.path)

    def open(self, verify: bool = True) -> Artifact:
        """The artifact (verified unless ``verify`` is False)."""
        if self.info is not None:
            assert self.store is not None
            return self.store.open(self.info, verify=verify)
        from ..artifact import open_artifact

        return open_artifact(self.path, verify=verify)  # type: ignore[arg-type]


def resolve_ref(ref: str | Ref, store: Store | str | Path | None = None) -> Resolved:
    """Apply the reference rule (:func:`dcregistry.refs.parse_ref`) and resolve it once: a store
    reference is looked up in ``store`` (a hub reference in the hub store), anything else is a
    directory. What is resolved is what is used, even if a tag moves later."""
    r = parse_ref(ref) if isinstance(ref, str) else ref
    if r.kind == "path":
        return Resolved(r, path=r.path)
    s = store_for(str(r), store)
    return Resolved(r, store=s, info=s.resolve(r))


def store_for(ref: str | Ref | None, store: Store | str | Path | None = None) -> Store:
    """The store that holds ``ref``: an ``hf://`` reference lives on a Hub store (``store`` if
    it is one, e.g. a ``dcreg serve`` URL, else the Hub at $HF_ENDPOINT); anything else in
    ``get_store(store)``."""
    if str(ref or "").startswith("hf://"):
        from .hub import HubStore

        given = get_store(store) if store is not None or os.environ.get(STORE_ENV) else None
        return given if isinstance(given, HubStore) else get_store("hub")
    return get_store(store)


def open_ref(ref: str | Ref, store: Store | str | None = None, verify: bool = True) -> Artifact:
    """Open the artifact ``ref`` names: a directory, or a version in ``store`` (default local)."""
    return resolve_ref(ref, store).open(verify=verify)


def _hub_factory(spec: str) -> Store:
    from .hub import HubStore

    if spec.startswith("hf://"):
        raise InvalidReferenceError(
            f"store {spec!r}: name the endpoint ('hf' or an http(s) URL); "
            "hf://datasets/ORG/NAME is a reference, not a store"
        )
    return HubStore(None if spec in ("hf", "hub") else spec)


# The Hub store (dcregistry.store.hub, imported only when used): the Hugging Face Hub or any
# endpoint speaking its API.
register_store(
    "hub", lambda s: s in ("hf", "hub") or s.startswith(("hf://", "http://", "https://")), _hub_factory
)
