"""The store interface every store implements (local, Hugging Face Hub, a ``dcreg serve``
endpoint), and the value types it returns. The CLI and the harness talk only to this.

A store holds named artifacts (``namespace/name``), each with immutable, numbered versions
``v1, v2, ...`` identified by their digest (sha256 of the canonical manifest), movable tags
(``latest`` is automatic: the highest live version), an append-only tag log, and annotations
(e.g. evaluation results) that never change a digest. References are parsed only by
:mod:`dcregistry.refs`; a store receives a string, a :class:`~dcregistry.refs.Ref` of kind
``name`` or a :class:`VersionInfo`.

Errors: every method raises :class:`~dcregistry.errors.UserError` subclasses for anything the
user or the machine can fix (``NotFoundError``, ``InvalidNameError``, ``IntegrityError``,
``StoreReadOnlyError``, ``StoreLockedError``, ``DiskFullError``, ``BadQueryError`` ...); any
other exception is a bug.
"""

from __future__ import annotations

import abc
import builtins
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from ..errors import UnsupportedOperationError, UserError
from ..refs import Ref

if TYPE_CHECKING:
    from ..artifact import Artifact
    from ..manifest import Manifest

__all__ = [
    "Store",
    "ReadableStore",
    "WritableStore",
    "AnnotatingStore",
    "MaintainableStore",
    "CAPABILITIES",
    "VersionInfo",
    "PushResult",
    "GcReport",
    "VersionCheck",
    "VerifyReport",
    "RefLike",
    "EVAL_KIND",
]

#: Annotation kind of evaluation results (rendered on the card).
EVAL_KIND = "eval"


@dataclass(frozen=True)
class VersionInfo:
    """One version of a name: number, digest, current tags (incl. ``latest``), metadata."""

    name: str
    version: int
    digest: str
    tags: tuple[str, ...]
    created_at: str | None  # when the version was pushed (UTC ISO 8601)
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def ref(self) -> str:
        """``ns/name@vN``."""
        return f"{self.name}@v{self.version}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (stable keys)."""
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "digest": self.digest,
            "tags": list(self.tags),
            "created_at": self.created_at,
            "metadata": self.metadata,
        }


#: What store methods accept as a version reference.
RefLike = str | Ref | VersionInfo


@dataclass(frozen=True)
class PushResult:
    """Outcome of a push: the version holding the content, and whether this push created it."""

    name: str
    version: int
    digest: str
    created: bool
    tags: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """``ns/name@vN``."""
        return f"{self.name}@v{self.version}"

    def __str__(self) -> str:
        return f"{self.ref} {self.digest}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (stable keys)."""
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "digest": self.digest,
            "created": self.created,
            "tags": list(self.tags),
        }


@dataclass
class GcReport:
    """What gc found (and removed unless ``dry_run``): unreferenced blobs, snapshots, temp files."""

    blobs: list[str]  # "sha256:<hex>" of unreferenced blobs
    bytes: int  # bytes freed (or that would be freed)
    snapshots: list[str] = field(default_factory=list)  # digests of stale snapshots
    tmp: list[str] = field(default_factory=list)  # names of stale temp files
    dry_run: bool = True
    skipped: list[str] = field(default_factory=list)  # unexpected entries left alone

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (stable keys)."""
        return {
            "blobs": self.blobs,
            "bytes": self.bytes,
            "snapshots": self.snapshots,
            "tmp": self.tmp,
            "dry_run": self.dry_run,
            "skipped": self.skipped,
        }


@dataclass(frozen=True)
class VersionCheck:
    """The verification outcome of one version (``error`` None when it passed)."""

    info: VersionInfo
    error: UserError | None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class VerifyReport:
    """Outcome of :meth:`Store.verify_all`: one check per live version, plus anomalies.

    Anomalies are things in the store that are not versions but do not stop it from working:
    unexpected files or directories in its tree (skipped by every operation), tag-log lines that
    are not valid entries (skipped), damaged annotation files. Iterating yields
    ``(info, error)`` pairs."""

    checks: list[VersionCheck] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[VersionCheck]:
        return [c for c in self.checks if c.error is not None]

    @property
    def ok(self) -> bool:
        """True when every version verified (anomalies are reported, not failures)."""
        return not self.failed

    def __iter__(self) -> Iterator[tuple[VersionInfo, UserError | None]]:
        return iter([(c.info, c.error) for c in self.checks])

    def __len__(self) -> int:
        return len(self.checks)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "versions": [
                {
                    "ref": c.info.ref,
                    "digest": c.info.digest,
                    "ok": c.ok,
                    "error": None if c.ok else str(c.error),
                }
                for c in self.checks
            ],
            "anomalies": list(self.anomalies),
            "ok": self.ok,
        }


class Store(abc.ABC):
    """A versioned artifact store, split by capability so that a command knows before it starts
    whether a store can do what it asks. Every store can ``read`` (this class: resolve, open,
    pull, list, tags, annotations, card, verify); one that can also ``write`` (push, tag, untag)
    is a :class:`WritableStore`, ``annotate`` (record results) an :class:`AnnotatingStore`,
    ``maintain`` (rm, gc) a :class:`MaintainableStore`. A command calls :meth:`require` first:
    it refuses a store without the capability (one line, exit 1) and returns the store typed
    for it. Implementations: :class:`~dcregistry.store.local.LocalStore` (all four),
    :class:`~dcregistry.store.hub.HubStore` (read and write). Only :meth:`card` has a default."""

    #: Human-readable location (a directory, a URL) used in messages.
    location: str = "?"
    #: What to do instead, per capability the store lacks (the end of :meth:`require`'s message).
    refusal_hints: Mapping[str, str] = {
        "annotate": "record results on a local store (pull the version and push it there)",
        "maintain": "remove or collect versions on the store itself",
    }
    #: The error :meth:`require` raises.
    unsupported_error: type[UnsupportedOperationError] = UnsupportedOperationError

    @property
    def capabilities(self) -> frozenset[str]:
        """What the store can do: ``read``, and ``write``, ``annotate``, ``maintain`` where it is a
        :class:`WritableStore`, :class:`AnnotatingStore`, :class:`MaintainableStore`."""
        return frozenset(c for c, cls in CAPABILITIES.items() if isinstance(self, cls))

    @overload
    def require(self, capability: Literal["write"], what: str) -> WritableStore: ...
    @overload
    def require(self, capability: Literal["annotate"], what: str) -> AnnotatingStore: ...
    @overload
    def require(self, capability: Literal["maintain"], what: str) -> MaintainableStore: ...
    @overload
    def require(self, capability: str, what: str) -> Store: ...
    def require(self, capability: str, what: str) -> Store:
        """This store, if it has ``capability``; else UnsupportedOperationError (exit 1) saying
        that ``what`` (the command or option) needs it. Call it before any work."""
        cls = CAPABILITIES.get(capability)
        if cls is None or not isinstance(self, cls):
            hint = self.refusal_hints.get(capability, "")
            raise self.unsupported_error(
                f"{what} needs a store that can {capability}, and {self.location} cannot"
                + (f"; {hint}" if hint else "")
            )
        return self

    # ---------------------------------------------------------------------------- resolving
    @abc.abstractmethod
    def resolve(self, ref: RefLike) -> VersionInfo:
        """The live version ``ref`` names (``ns/name``, ``@vN``, ``@tag``, ``@latest``,
        ``@sha256:<prefix>``, chosen by :func:`~dcregistry.store.select.select_version`);
        NotFoundError / AmbiguousReferenceError otherwise."""

    @abc.abstractmethod
    def manifest(self, ref: RefLike) -> Manifest:
        """The manifest of the version ``ref`` names, checked against its digest."""

    # ------------------------------------------------------------------------- content out
    @abc.abstractmethod
    def open(self, ref: RefLike, verify: bool = True) -> Artifact:
        """The version as a read-only :class:`~dcregistry.artifact.Artifact` (``verify``
        re-hashes every file first). Works on a read-only store."""

    @abc.abstractmethod
    def pull(self, ref: RefLike, out_dir: str | Path | None = None, *, progress: bool = False) -> Path:
        """Copy the version to ``out_dir`` (default ``./<name>-v<N>``, which must be absent or
        empty and outside the store), verified before anything appears there; return it."""

    # ---------------------------------------------------------------------------- listing
    @abc.abstractmethod
    def list(
        self, name: str | None = None, query: Sequence[str] | str = (), all_versions: bool = False
    ) -> list[VersionInfo]:
        """Versions whose metadata match every query term (``ipc<=10``, ``dataset=cifar10``;
        fields and matching: :mod:`~dcregistry.store.query`): the highest matching one per name,
        or all of them; BadQueryError for a bad term."""

    # ------------------------------------------------------------------------------- tags
    @abc.abstractmethod
    def tags(self, name: str) -> dict[str, int]:
        """Current tags of ``name`` -> version number, ``latest`` included."""

    @abc.abstractmethod
    def tag_log(self, name: str) -> builtins.list[dict[str, Any]]:  # (`list` is a method here)
        """``name``'s tag history, oldest first: ``{ts, action: set|unset, tag, version, digest}``."""

    # ------------------------------------------------------------------------- annotations
    @abc.abstractmethod
    def annotations(self, ref: RefLike, kind: str | None = None) -> builtins.list[dict[str, Any]]:
        """A version's annotations, oldest first: ``{id, kind, created_at, name, version,
        digest, record}`` (none on a store that keeps none)."""

    def card(self, ref: RefLike) -> str:
        """The version's card re-rendered with its recorded evaluation results."""
        from ..card import render_card

        info = self.resolve(ref)
        results = [a["record"] for a in self.annotations(info, EVAL_KIND)]
        return render_card(info.metadata, results, ref=info.ref)

    # ------------------------------------------------------------------------------ verify
    @abc.abstractmethod
    def verify(self, ref: RefLike) -> VersionInfo:
        """Re-hash every file of the version and validate it; IntegrityError names the file."""

    @abc.abstractmethod
    def verify_all(self) -> VerifyReport:
        """Verify every live version and report anomalies in the store."""


#: Every store can read: :class:`Store` is the reading interface.
ReadableStore = Store


class WritableStore(Store):
    """A store that can ``write``: push versions, set and remove tags."""

    @abc.abstractmethod
    def push(
        self, path: str | Path, name: str, tags: Sequence[str] = (), *, progress: bool = False
    ) -> PushResult:
        """Validate the artifact directory ``path`` and store it as the next version of ``name``
        with ``tags``; the version and its tags become visible together or not at all.
        Identical content already live under ``name`` returns that version (created=False)."""

    @abc.abstractmethod
    def tag(self, ref: RefLike, tag: str) -> VersionInfo:
        """Point ``tag`` at the version ``ref`` names (moving it if it pointed elsewhere)."""

    @abc.abstractmethod
    def untag(self, name: str, tag: str) -> int:
        """Remove ``tag`` from ``name``; return the version it pointed at."""


class AnnotatingStore(Store):
    """A store that can ``annotate``: record results (e.g. evaluations) on a version."""

    @abc.abstractmethod
    def annotate(self, ref: RefLike, kind: str, record: Mapping[str, Any]) -> str:
        """Attach the JSON ``record`` of ``kind`` (e.g. "eval") to a version; return its id."""


class MaintainableStore(Store):
    """A store that can ``maintain``: remove versions and collect garbage."""

    @abc.abstractmethod
    def rm(self, ref: RefLike, force: bool = False) -> VersionInfo:
        """Remove one version (refused while it carries a user tag unless ``force``); its
        number is never reused."""

    @abc.abstractmethod
    def gc(self, dry_run: bool = True) -> GcReport:
        """Find (and unless ``dry_run`` delete) data no live version needs."""


#: Capability name -> the interface a store implements to have it.
CAPABILITIES: dict[str, type[object]] = {
    "read": Store,
    "write": WritableStore,
    "annotate": AnnotatingStore,
    "maintain": MaintainableStore,
}
