"""The local store's directory layout, version files and lock.

Root: the ``root`` argument, else ``$DCREG_HOME``, else ``~/.cache/dcreg``. Layout::

    blobs/sha256/<2 hex>/<64 hex>   content-addressed, read-only (0444) files. Every file of an
                                    artifact is a blob, and so is its manifest, stored as the
                                    canonical manifest bytes: the version digest is the sha256 of
                                    that blob (= artifact.manifest_digest).
    repos/<ns>/<name>/versions/v<N> one tiny immutable JSON file {"digest", "created_at", "txn"}
                                    per version. A version exists iff this file exists; it is
                                    written last, by atomic rename, so a killed push never shows
                                    a partial version.
    repos/<ns>/<name>/removed/v<N>  the version file of a removed version (``rm``), kept so that
                                    version numbers are never reused.
    repos/<ns>/<name>/tags.log      append-only JSON lines {"ts","action":"set"|"unset","tag",
                                    "version","digest"[,"txn"]}; the current tags are its replay
                                    (:mod:`.tags`). ``latest`` is automatic.
    repos/<ns>/<name>/annotations/v<N>/<id>.json   annotations (:mod:`.annotations`).
    index.sqlite                    derived index for metadata queries (:mod:`.index`).
    snapshots/<digest hex>/         a version materialized as a directory (hard links to blobs).
    tmp/                            temp files (named <pid>-..., so gc can tell dead writers' ones).
    lock                            a file lock held around every mutation of versions, tags and
                                    the index.

Every reader here tolerates entries it does not expect (a directory where a version file
should be, a stray file among the repos, names that are not valid): they are skipped, and
:func:`dcregistry.store.maintenance.anomalies` reports them for ``verify --all``.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import (
    IntegrityError,
    InvalidNameError,
    NotFoundError,
    StoreLockedError,
    StoreReadOnlyError,
    UserError,
)
from ..fsio import atomic_write_bytes, ensure_dir, is_writable_dir, translate_os_errors
from ..refs import VERSION_RE, is_sha256_hex, validate_name, version_number

if TYPE_CHECKING:
    from filelock import FileLock

INDEX_FILE = "index.sqlite"
LOCK_FILE = "lock"
SUBDIRS = ("blobs", "repos", "tmp", "snapshots")
#: Top-level entries a store may hold (anything else is reported as unexpected).
TOP_LEVEL = frozenset(
    {
        *SUBDIRS,
        LOCK_FILE,
        INDEX_FILE,
        f"{INDEX_FILE}-journal",
        "downloads",  # dcreg fetch's download cache (dcregistry.published)
        "hub",  # dcreg serve's side files: uploads, extras (dcregistry.server)
        f"{INDEX_FILE}-wal",
        f"{INDEX_FILE}-shm",
    }
)
#: Version files are tiny; anything larger is damaged (and never read whole).
MAX_VERSION_FILE = 64 << 10
#: A versions directory whose mtime is older than this is summarized by its signature (2 s
#: covers filesystems with coarse timestamps).
SETTLE_NS = 2_000_000_000


def default_root() -> Path:
    """``$DCREG_HOME`` if set, else ``~/.cache/dcreg``."""
    env = os.environ.get("DCREG_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "dcreg"


def hex_of(digest: str) -> str:
    """The 64 hex digits of ``sha256:<hex>``; IntegrityError if malformed."""
    if not isinstance(digest, str) or not digest.startswith("sha256:") or not is_sha256_hex(digest[7:]):
        raise IntegrityError(f"malformed digest {str(digest)[:80]!r}")
    return digest[7:]


@dataclass(frozen=True)
class VersionRecord:
    """The content of a version file."""

    digest: str
    created_at: str | None
    txn: str | None = None  # the push that created it (tags logged with it carry the same id)


def read_small_json(path: str | Path, limit: int = MAX_VERSION_FILE) -> object:
    """Parse a small JSON file; ValueError if larger than ``limit``, not JSON or too deep."""
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path} is larger than {limit} bytes")
    try:
        return json.loads(data.decode("utf-8"))
    except RecursionError:
        raise ValueError(f"{path} nests too deeply") from None


def _is_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(path.lstat().st_mode)
    except OSError:
        return False


def list_dir(path: str | Path) -> list[os.DirEntry[str]]:
    """Entries of directory ``path`` sorted by name ([] if it is missing or not a directory)."""
    try:
        with os.scandir(path) as it:
            return sorted(it, key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []


def is_file_entry(entry: os.DirEntry[str]) -> bool:
    """A regular file (symlinks are never followed inside a store)."""
    try:
        return entry.is_file(follow_symlinks=False)
    except OSError:
        return False


def is_dir_entry(entry: os.DirEntry[str]) -> bool:
    """A real directory (not a symlink to one)."""
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


class Layout:
    """Paths, version files and the lock of a local store rooted at ``root``."""

    def __init__(self, root: Path, lock_timeout: float = 300.0):
        self.root = root
        self.lock_timeout = lock_timeout
        self._lock: FileLock | None = None

    # ---------------------------------------------------------------------------------- paths
    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def index_path(self) -> Path:
        return self.root / INDEX_FILE

    def blob_path(self, hexdigest: str) -> Path:
        if not isinstance(hexdigest, str) or not is_sha256_hex(hexdigest):
            raise IntegrityError(f"not a sha256 digest: {str(hexdigest)[:80]!r}")
        return self.root / "blobs" / "sha256" / hexdigest[:2] / hexdigest

    def repo(self, name: str) -> Path:
        ns, nm = validate_name(name).split("/")
        return self.root / "repos" / ns / nm

    def snapshot_path(self, digest: str) -> Path:
        return self.root / "snapshots" / hex_of(digest)

    # ------------------------------------------------------------------------ writability
    def writable(self) -> bool:
        """Whether the store (or, before it exists, the directory that will hold it) is writable."""
        p = self.root
        while not p.exists():
            if p.parent == p:
                return False
            p = p.parent
        return p.is_dir() and is_writable_dir(p)

    def read_only_error(self) -> StoreReadOnlyError:
        return StoreReadOnlyError(
            f"the store at {self.root} is read-only; reading works, but pushing, tagging, "
            "removing, collecting garbage and recording results need a writable store"
        )

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Translate OS refusals during a store write into named errors about this store."""
        with translate_os_errors(
            self.root, read_only_cls=StoreReadOnlyError, subject=f"the store at {self.root}"
        ):
            yield

    def ensure(self) -> None:
        """Create the store's directories (StoreReadOnlyError where that is not possible)."""
        if not self.writable():
            raise self.read_only_error()
        with self.guard():
            for sub in ("blobs/sha256", "repos", "tmp", "snapshots"):
                ensure_dir(self.root / sub)

    @contextmanager
    def locked(self, timeout: float | None = None) -> Iterator[None]:
        """Hold the store's write lock (StoreLockedError after ``timeout`` seconds)."""
        from filelock import FileLock, Timeout  # only writers pay for importing it

        self.ensure()
        if self._lock is None:
            self._lock = FileLock(str(self.root / LOCK_FILE))
        wait = self.lock_timeout if timeout is None else timeout
        try:
            with self.guard():
                self._lock.acquire(timeout=wait)
        except Timeout:
            raise StoreLockedError(
                f"the store at {self.root} is locked by another dcreg process "
                f"(waited {wait:.0f}s on {self.root / LOCK_FILE})"
            ) from None
        try:
            with self.guard():
                yield
        finally:
            self._lock.release()

    # ----------------------------------------------------------------------- version files
    def names(self) -> list[str]:
        """Every valid name with a repo directory (live versions or not), sorted."""
        out = []
        for ns in list_dir(os.path.join(self.root, "repos")):
            if not is_dir_entry(ns):
                continue
            for nm in list_dir(ns.path):
                if not is_dir_entry(nm):
                    continue
                name = f"{ns.name}/{nm.name}"
                try:
                    validate_name(name)
                except InvalidNameError:
                    continue
                out.append(name)
        return out

    def version_numbers(self, name: str, sub: str = "versions") -> list[int]:
        """Numbers of the version files (regular files named ``v<N>``) of ``name``, sorted."""
        out = []
        try:
            with os.scandir(self.repo(name) / sub) as it:  # hot in list: no sorting of entries
                for e in it:
                    m = VERSION_RE.fullmatch(e.name)
                    if m is not None and is_file_entry(e):
                        out.append(int(m.group(1)))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return []
        out.sort()
        return out

    def allocated(self, name: str) -> int:
        """The highest version number ever allocated to ``name`` (live, removed, or an entry of
        any kind named ``v<N>`` in the way), 0 if none: the next version is this plus one."""
        top = 0
        for sub in ("versions", "removed"):
            for e in list_dir(self.repo(name) / sub):
                v = version_number(e.name)
                if v is not None:
                    top = max(top, v)
        return top

    def read_version(self, name: str, version: int, sub: str = "versions") -> VersionRecord:
        """The version file of ``name@v<version>`` (NotFoundError / IntegrityError)."""
        path = self.repo(name) / sub / f"v{version}"
        try:
            data = read_small_json(path)
            if not isinstance(data, dict):
                raise ValueError("not an object")
            digest = data["digest"]
            hex_of(digest)
            created_at, txn = data.get("created_at"), data.get("txn")
            if created_at is not None and not isinstance(created_at, str):
                raise ValueError("created_at")
            if txn is not None and not isinstance(txn, str):
                raise ValueError("txn")
            return VersionRecord(digest, created_at, txn)
        except FileNotFoundError:
            raise NotFoundError(f"{name}@v{version} does not exist") from None
        except (ValueError, KeyError, TypeError, UserError, OSError):
            raise IntegrityError(f"{name}@v{version}: version file {path} is damaged") from None

    def live(self, name: str) -> dict[int, VersionRecord]:
        """Live versions of ``name`` whose version file reads (damaged ones are skipped)."""
        out = {}
        for v in self.version_numbers(name):
            try:
                out[v] = self.read_version(name, v)
            except UserError:
                continue  # tampered by hand: verify --all reports it
        return out

    def scan(self) -> set[tuple[str, int]]:
        """Every live (name, version) in the store, from the version files."""
        return {(n, v) for n in self.names() for v in self.version_numbers(n)}

    def versions_signature(self, name: str) -> str | None:
        """A signature of ``name``'s versions directory that changes whenever an entry is added,
        removed or renamed in it (its mtime, inode, size), or None while it is too recent to
        trust: a change within the same timestamp tick could go unseen, so only a directory
        untouched for :data:`SETTLE_NS` is summarized by its signature."""
        try:
            st = os.stat(os.path.join(self.root, "repos", name, "versions"))
        except FileNotFoundError:
            return "absent"  # (a later versions/ directory gives another signature)
        except OSError:
            return None
        if time.time_ns() - st.st_mtime_ns < SETTLE_NS:
            return None
        return f"{st.st_mtime_ns}:{st.st_ino}:{st.st_size}:{st.st_dev}"

    def scan_by_name(self) -> dict[str, list[int]]:
        """Live version numbers per name (names without live versions left out)."""
        out = {}
        for n in self.names():
            if vs := self.version_numbers(n):
                out[n] = vs
        return out

    def write_version(self, name: str, version: int, record: VersionRecord) -> None:
        """Create the version file (under the lock; the number must be unallocated)."""
        repo = self.repo(name)
        vdir = ensure_dir(repo / "versions")
        target = vdir / f"v{version}"
        if target.exists() or (repo / "removed" / f"v{version}").exists():
            raise RuntimeError(f"{name}@v{version} already allocated")  # a bug: we hold the lock
        body = {"digest": record.digest, "created_at": record.created_at}
        if record.txn:
            body["txn"] = record.txn
        data = json.dumps(body, sort_keys=True) + "\n"
        atomic_write_bytes(
            target,
            data.encode(),
            tmp_dir=self.tmp,
            mode=0o444,
            read_only_cls=StoreReadOnlyError,
            subject=f"the store at {self.root}",
        )

    def no_such_name(self, name: str) -> str:
        """The message for a name without live versions (lists the names that exist)."""
        names = [n for n in self.names() if self.version_numbers(n)]
        msg = f"no artifact named {name} in the store at {self.root}"
        if not names:
            return msg + " (the store is empty; push an artifact directory to add one)"
        if len(names) <= 8:
            return msg + f" (names: {', '.join(names)})"
        return msg + f" ({len(names)} names; list them to see which)"

    def require_name(self, name: str) -> list[int]:
        """Live version numbers of ``name`` (NotFoundError if there are none)."""
        live = self.version_numbers(name)
        if not live:
            raise NotFoundError(self.no_such_name(name))
        return live


def is_regular(path: Path) -> bool:
    """A regular file, not following symlinks."""
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


__all__ = [
    "Layout",
    "VersionRecord",
    "default_root",
    "hex_of",
    "read_small_json",
    "list_dir",
    "is_file_entry",
    "is_dir_entry",
    "is_regular",
    "INDEX_FILE",
    "LOCK_FILE",
    "TOP_LEVEL",
    "SUBDIRS",
]
