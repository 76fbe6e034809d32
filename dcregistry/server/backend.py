"""The Hub view of a local store: repos, commits, trees and staged uploads behind ``dcreg serve``.

Each store version ``ns/name@vN`` is one commit of the dataset repo ``ns/name`` whose commit id
is derived from (name, N, version digest), so it never changes. ``main`` points at the latest
version; tags are the version tags ``vN`` (implicit) plus the store's user tags. A commit is
accepted only if the tree it produces is a valid dcreg/1 artifact (checked by the local store's
own push), plus a few extra files (the parquet preview, ``.gitattributes``) kept beside it.

A repo can instead be a *results repo* (:mod:`dcregistry.server.results_repo`): commits of
result records only, each a real commit with its own history; its commits carry
``Commit.results`` and every method here dispatches to :class:`ResultsRepos` for them.

Server-side files under ``<home>/hub/``::

    created/<ns>/<name>        marker: the repo exists (it may have no version yet)
    extras/<ns>/<name>/<hex>.json
                               extra files of the version whose digest is sha256:<hex>
                               ({path: {sha256, size}}, the uploaded manifest.json included)
    blobs/<hex>                content of those extra files
    lfs/<hex>                  LFS objects uploaded and verified, waiting to be committed
    tmp/                       partial uploads and commit staging (never visible as a version)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from ..artifact import MANIFEST_FILE, manifest_digest
from ..errors import DiskFullError, JSONFormatError, NotFoundError, StorageError, UserError
from ..fsio import atomic_write_bytes, ensure_dir, remove_tree, tmp_name
from ..hubformat import BRANCH, commit_title, version_tag
from ..jsonsafe import loads_bounded
from ..manifest import manifest_bytes, parse_manifest
from ..refs import is_commit_id, is_sha256_hex, validate_name, validate_tag
from ..results import CARD_FILE, is_record_path
from ..store.local import LocalStore
from .hubcommon import HubError as HubError
from .hubcommon import check_path as check_path
from .hubcommon import empty_oid as empty_oid
from .hubcommon import show as _show
from .results_repo import ResultsRepos

#: Largest regular (non-LFS) file a commit may carry inline, and largest commit body.
MAX_INLINE_FILE = 10 << 20
MAX_COMMIT_BODY = 64 << 20
#: Largest LFS object accepted and largest manifest.json parsed.
MAX_LFS_OBJECT = 16 << 30
MAX_MANIFEST = 16 << 20
#: Uploaded LFS objects no commit used are kept this long (for dedup), then swept.
LFS_KEEP_SECONDS = 24 * 3600
#: How often a running server sweeps dead staging and expired LFS objects.
SWEEP_SECONDS = 600.0
#: Seconds a branch or tag name stays resolved in memory (commit ids: for good).
REF_TTL = 1.0
#: Extra (non-artifact) files a version may carry, and operations one commit may hold.
MAX_EXTRAS = 64
MAX_COMMIT_OPS = 4 * MAX_EXTRAS
#: Files at least this large, or with these suffixes, are served as LFS objects.
LFS_MIN_SIZE = 1 << 20
LFS_SUFFIXES = (".safetensors", ".parquet", ".npz", ".npy", ".pt", ".bin", ".png", ".jpg")

_VTAG = re.compile(r"v([1-9][0-9]{0,8})")


def commit_oid(name: str, version: int, digest: str) -> str:
    """The stable 40-hex commit id of ``name@v<version>`` with ``digest``."""
    return hashlib.sha1(f"dcreg-commit\n{name}\nv{version}\n{digest}\n".encode()).hexdigest()


def git_blob_oid(data: bytes) -> str:
    """git's object id of a blob with content ``data``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-lfs pointer file text of an object."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def is_lfs(path: str, size: int) -> bool:
    """Whether ``path`` is stored/served as an LFS object (binary suffix or large)."""
    return size >= LFS_MIN_SIZE or path.lower().endswith(LFS_SUFFIXES)


def check_repo(ns: str, name: str) -> str:
    """``ns/name`` if it is a valid dcreg name; HubError 400 otherwise."""
    try:
        return validate_name(f"{ns}/{name}")
    except UserError as exc:
        raise HubError(400, str(exc)) from None


@dataclass(frozen=True)
class Entry:
    """One file of a commit's tree."""

    path: str
    sha256: str
    size: int
    source: Path | None = None  # a file holding the content
    data: bytes | None = None  # or the content itself (small files)

    @property
    def lfs(self) -> bool:
        return is_lfs(self.path, self.size)

    def read(self, cap: int) -> bytes:
        if self.size > cap:
            raise HubError(422, f"{self.path} is {self.size} bytes, more than the {cap} allowed")
        if self.data is not None:
            return self.data
        assert self.source is not None
        return self.source.read_bytes()

    @cached_property
    def git_oid(self) -> str:
        if self.lfs:
            return git_blob_oid(lfs_pointer(self.sha256, self.size))
        return git_blob_oid(self.read(MAX_INLINE_FILE))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "file", "oid": self.git_oid, "size": self.size, "path": self.path}
        if self.lfs:
            out["lfs"] = {
                "oid": self.sha256,
                "size": self.size,
                "pointerSize": len(lfs_pointer(self.sha256, self.size)),
            }
        return out


@dataclass(frozen=True)
class Commit:
    """A resolved revision: the version (None for an empty repo) and its commit id."""

    name: str
    oid: str
    version: int | None = None
    digest: str | None = None
    created_at: str | None = None
    metadata: Mapping[str, Any] | None = None
    results: bool = False  # a commit of a results repo (version and digest are None)


class RepoBackend:
    """Hub semantics over a :class:`~dcregistry.store.local.LocalStore` rooted at ``home``."""

    def __init__(self, store: LocalStore, home: Path):
        self.store = store
        self.hub = Path(home) / "hub"
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._trees: dict[tuple[str, int, str], dict[str, Entry]] = {}
        self._commits: dict[tuple[str, str], Commit] = {}
        self._refcache: dict[tuple[str, str], tuple[float, Commit]] = {}
        self._cache_lock = threading.Lock()  # every insert/iteration of the three caches above
        self.results = ResultsRepos(self.hub)
        for sub in ("created", "extras", "blobs", "lfs", "tmp"):
            ensure_dir(self.hub / sub)
        self.sweep()

    # ------------------------------------------------------------------------------- plumbing
    def sweep(self) -> list[Path]:
        """Remove partial uploads and staging of server runs that ended (named by pid and
        incarnation: a restarted container's pid 1 is another run), and uploaded LFS objects that
        no commit used within LFS_KEEP_SECONDS (committed content lives in the store's blobs or
        ``hub/blobs``). Returns what was removed."""
        from ..store.maintenance import dead_tmp_entries

        tmp = self.hub / "tmp"
        gone = dead_tmp_entries(tmp, tmp)
        for path in gone:
            remove_tree(path)
        cutoff = time.time() - LFS_KEEP_SECONDS
        for entry in os.scandir(self.hub / "lfs"):
            try:
                if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.unlink(entry.path)
                    gone.append(Path(entry.path))
            except OSError:
                continue
        return gone

    def start_sweeper(self, every: float) -> Callable[[], None]:
        """Sweep every ``every`` seconds in a daemon thread; returns the function that stops it."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(every):
                try:
                    self.sweep()
                except OSError:  # a vanished entry or a full disk: try again next time
                    continue

        threading.Thread(target=loop, name="dcreg-sweeper", daemon=True).start()
        return stop.set

    def _lock(self, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(name, threading.Lock())

    def _marker(self, name: str) -> Path:
        ns, nm = name.split("/")
        return self.hub / "created" / ns / nm

    def _extras_file(self, name: str, digest: str) -> Path:
        ns, nm = name.split("/")
        return self.hub / "extras" / ns / nm / f"{digest[7:]}.json"

    # ---------------------------------------------------------------------------------- repos
    def versions(self, name: str) -> list[Any]:
        """Live versions of ``name`` (VersionInfo), oldest first; [] if none."""
        try:
            return sorted(self.store.list(name=name, all_versions=True), key=lambda i: i.version)
        except NotFoundError:
            return []

    def exists(self, name: str) -> bool:
        return self._marker(name).exists() or self.results.has(name) or bool(self.versions(name))

    def is_results(self, name: str) -> bool:
        """Whether ``name`` is a results repo (:mod:`dcregistry.server.results_repo`)."""
        return self.results.has(name)

    def make_results(self, name: str) -> None:
        """Create ``name`` as an (empty) results repo, or check that it is one already."""
        with self._lock(name):
            if self.results.has(name):
                return
            if self.versions(name):
                raise UserError(f"{name} holds artifact versions; it cannot become a results repo")
            self.create(name)
            self.results.init(name)
            self.invalidate(name)

    def require(self, name: str) -> None:
        if not self.exists(name):
            raise HubError(404, f"repository {name} not found", "RepoNotFound")

    def create(self, name: str) -> bool:
        """Create the repo ``name``; False if it already existed."""
        if self.exists(name):
            return False
        marker = self._marker(name)
        ensure_dir(marker.parent)
        atomic_write_bytes(marker, b"", tmp_dir=self.hub / "tmp")
        self.invalidate(name)
        return True

    def names(self) -> list[str]:
        """Every repo: store names with versions and created markers."""
        out = {i.name for i in self.store.list()}
        created = self.hub / "created"
        for ns in os.listdir(created):
            for nm in os.listdir(created / ns) if (created / ns).is_dir() else []:
                try:
                    out.add(validate_name(f"{ns}/{nm}"))
                except UserError:
                    continue
        out.update(self.results.names())
        return sorted(out)

    # ------------------------------------------------------------------------------ revisions
    def _commit(self, info: Any) -> Commit:
        return Commit(
            info.name,
            commit_oid(info.name, info.version, info.digest),
            info.version,
            info.digest,
            info.created_at,
            info.metadata,
        )

    def head(self, name: str) -> Commit:
        """The commit ``main`` points at (the latest version, or the empty commit)."""
        self.require(name)
        if self.results.has(name):
            return self._results_commit(name, self.results.head_oid(name))
        try:
            return self._commit(self.store.resolve(name))
        except NotFoundError:
            return Commit(name, empty_oid(name))

    def invalidate(self, name: str) -> None:
        """Forget cached branch/tag resolutions of ``name`` (after a write through the server)."""
        with self._cache_lock:
            for key in [k for k in self._refcache if k[0] == name]:
                del self._refcache[key]

    def resolve(self, name: str, rev: str) -> Commit:
        """The commit revision ``rev`` names: main, a commit id, vN, or a user tag.

        Commit ids are immutable and cached for good; branch and tag names for REF_TTL seconds
        (writes through this server invalidate them at once), so a hot ``resolve`` download does
        not re-read the store on every request."""
        if is_commit_id(rev):
            hit = self._commits.get((name, rev))
            if hit is not None and not hit.results:
                return hit
        else:
            cached = self._refcache.get((name, rev))
            if cached is not None and cached[0] > time.monotonic():
                return cached[1]
        commit = self._resolve(name, rev)
        if commit.results:  # a results repo's main moves with every commit: no caching by name
            return commit
        with self._cache_lock:
            if commit.version is not None:
                if len(self._commits) > 65536:
                    self._commits.clear()
                self._commits[(name, commit.oid)] = commit
            if not is_commit_id(rev):
                if len(self._refcache) > 65536:
                    self._refcache.clear()
                self._refcache[(name, rev)] = (time.monotonic() + REF_TTL, commit)
        return commit

    def cached(self, name: str, rev: str) -> tuple[Commit, dict[str, Entry]] | None:
        """(commit, tree) of ``rev`` if both are in memory (no file I/O), else None."""
        if is_commit_id(rev):
            commit = self._commits.get((name, rev))
        else:
            hit = self._refcache.get((name, rev))
            commit = hit[1] if hit is not None and hit[0] > time.monotonic() else None
        if commit is None or commit.version is None or commit.digest is None:
            return None
        tree = self._trees.get((commit.name, commit.version, commit.digest))
        return (commit, tree) if tree is not None else None

    def forget_commit(self, name: str, oid: str) -> None:
        """Drop a cached commit whose files vanished (removed version, gc)."""
        with self._cache_lock:
            self._commits.pop((name, oid), None)
        self.invalidate(name)

    def _results_commit(self, name: str, oid: str) -> Commit:
        c = self.results.load(name, oid)
        if c is None:
            raise HubError(404, f"{name} has no commit {oid}", "RevisionNotFound")
        return Commit(name, oid, created_at=c.date, results=True)

    def _resolve(self, name: str, rev: str) -> Commit:
        self.require(name)
        if rev in (BRANCH, f"refs/heads/{BRANCH}", "HEAD"):
            return self.head(name)
        if self.results.has(name):
            if not is_commit_id(rev):  # results repos have one branch and no tags
                raise HubError(
                    404, f"revision {_show(rev)} of {name}: no such branch or tag", "RevisionNotFound"
                )
            return self._results_commit(name, rev)
        if is_commit_id(rev):
            if rev == empty_oid(name):
                return Commit(name, rev)
            for info in self.versions(name):
                if commit_oid(info.name, info.version, info.digest) == rev:
                    return self._commit(info)
            raise HubError(404, f"{name} has no commit {rev}", "RevisionNotFound")
        m = _VTAG.fullmatch(rev)
        try:
            if m:
                return self._commit(self.store.resolve(f"{name}@v{m.group(1)}"))
            validate_tag(rev)
            return self._commit(self.store.resolve(f"{name}@{rev}"))
        except UserError as exc:
            raise HubError(404, f"revision {_show(rev)} of {name}: {exc}", "RevisionNotFound") from None

    def refs(self, name: str) -> dict[str, Any]:
        """Branches and tags as the Hub's ``/refs`` answers them."""
        head = self.head(name)
        if head.results:
            return {
                "branches": [{"name": BRANCH, "ref": f"refs/heads/{BRANCH}", "targetCommit": head.oid}],
                "converts": [],
                "tags": [],
                "pullRequests": [],
            }
        infos = self.versions(name)
        by_version = {i.version: i for i in infos}
        tags = [
            {
                "name": version_tag(i.version),
                "ref": f"refs/tags/{version_tag(i.version)}",
                "targetCommit": commit_oid(i.name, i.version, i.digest),
            }
            for i in infos
        ]
        if infos:
            for tag, version in sorted(self.store.tags(name).items()):
                if tag != "latest" and version in by_version:
                    i = by_version[version]
                    tags.append(
                        {
                            "name": tag,
                            "ref": f"refs/tags/{tag}",
                            "targetCommit": commit_oid(i.name, i.version, i.digest),
                        }
                    )
        return {
            "branches": [{"name": BRANCH, "ref": f"refs/heads/{BRANCH}", "targetCommit": head.oid}],
            "converts": [],
            "tags": tags,
            "pullRequests": [],
        }

    def history(self, name: str, rev: str) -> list[dict[str, Any]]:
        """Commits reachable from ``rev``, newest first (one per live version up to it)."""
        top = self.resolve(name, rev)
        if top.results:
            return [
                {
                    "id": c.oid,
                    "title": c.title,
                    "message": c.message,
                    "authors": [{"user": "dcreg"}],
                    "date": c.date,
                }
                for c in self.results.chain(name, top.oid)
            ]
        out = []
        for info in reversed(self.versions(name)):
            if top.version is None or info.version > top.version:
                continue
            out.append(
                {
                    "id": commit_oid(info.name, info.version, info.digest),
                    "title": commit_title(info.version, info.digest),
                    "message": "",
                    "authors": [{"user": "dcreg"}],
                    "date": info.created_at,
                }
            )
        return out

    # ----------------------------------------------------------------------------------- trees
    def tree(self, commit: Commit) -> dict[str, Entry]:
        """path -> Entry for every file of ``commit`` (cached: versions are immutable)."""
        if commit.results:
            sha, size, blob = self.results.card(commit.name)
            rtree = {CARD_FILE: Entry(CARD_FILE, sha, size, source=blob)}
            for path, (sha, size) in self.results.files(commit.name, commit.oid).items():
                rtree[path] = Entry(path, sha, size, source=self.results.blob(sha))
            return dict(sorted(rtree.items()))
        if commit.version is None or commit.digest is None:
            return {}
        key = (commit.name, commit.version, commit.digest)
        cached = self._trees.get(key)
        if cached is not None and all(e.source is None or e.source.exists() for e in cached.values()):
            return cached
        art = self.store.open(f"{commit.name}@v{commit.version}", verify=False)
        manifest = art.manifest
        files: dict[str, Entry] = {}
        for fname, e in manifest["files"].items():
            files[fname] = Entry(fname, e["sha256"], e["size"], source=Path(art.path) / fname)
        extras = self._read_extras(commit.name, commit.digest)
        for path, extra in extras.items():
            if path not in files:
                files[path] = Entry(
                    path, extra["sha256"], extra["size"], source=self.hub / "blobs" / extra["sha256"]
                )
        if MANIFEST_FILE not in files:
            # manifest.json as build_artifact writes it, kept as a file so it is served like the rest
            data = manifest_bytes(manifest)
            sha = hashlib.sha256(data).hexdigest()
            blob = self.hub / "blobs" / sha
            if not blob.is_file():
                atomic_write_bytes(blob, data, tmp_dir=self.hub / "tmp", mode=0o444)
            files[MANIFEST_FILE] = Entry(MANIFEST_FILE, sha, len(data), source=blob)
        tree = dict(sorted(files.items()))
        with self._cache_lock:
            if len(self._trees) > 4096:
                self._trees.clear()
            self._trees[key] = tree
        return tree

    def _read_extras(self, name: str, digest: str) -> dict[str, dict[str, Any]]:
        try:
            data = loads_bounded(self._extras_file(name, digest).read_bytes(), "extras")
        except (OSError, JSONFormatError):
            return {}
        out = {}
        for path, e in (data.get("files") or {}).items() if isinstance(data, dict) else []:
            if (
                isinstance(e, dict)
                and isinstance(e.get("sha256"), str)
                and is_sha256_hex(e["sha256"])
                and isinstance(e.get("size"), int)
                and (self.hub / "blobs" / e["sha256"]).is_file()
            ):
                out[path] = e
        return out

    def card_tags(self, commit: Commit) -> list[str]:
        """The card's ``tags`` (what ``list_datasets(filter=...)`` matches)."""
        from ..card import front_matter

        if commit.results:
            return ["dcreg-results"]

        try:
            return list(front_matter(dict(commit.metadata or {}))["tags"])
        except (KeyError, TypeError, ValueError):
            return []

    # ---------------------------------------------------------------------------------- uploads
    def lfs_path(self, oid: str) -> Path:
        return self.hub / "lfs" / oid

    def has_object(self, name: str, oid: str, size: int) -> bool:
        """Whether the LFS object ``oid`` is already on the server (uploaded, or in ``main``)."""
        p = self.lfs_path(oid)
        if p.is_file() and p.stat().st_size == size:
            return True
        try:
            tree = self.tree(self.head(name))
        except (HubError, UserError):
            return False
        return any(e.sha256 == oid and e.size == size for e in tree.values())

    def new_upload(self) -> Path:
        """A fresh temp path for an upload in progress (removed on failure by the caller)."""
        return self.hub / "tmp" / tmp_name(suffix=".upload")

    def finish_upload(self, tmp: Path, oid: str, size: int, got_sha: str, got_size: int) -> None:
        """Move a fully received upload into place if its hash and size are the declared ones."""
        if got_size != size or got_sha != oid:
            remove_tree(tmp)
            raise HubError(
                400,
                f"upload of {oid[:12]}… is {got_size} bytes with sha256 "
                f"{got_sha[:12]}…, not the declared {size} bytes / {oid[:12]}…; "
                "nothing was stored",
            )
        os.chmod(tmp, 0o444)
        os.replace(tmp, self.lfs_path(oid))

    # ---------------------------------------------------------------------------------- commits
    def commit(self, name: str, rev: str, lines: list[dict[str, Any]]) -> Commit:
        """Apply an NDJSON commit to ``main``; the result must be a valid dcreg/1 artifact."""
        if rev not in (BRANCH, f"refs/heads/{BRANCH}"):
            raise HubError(400, f"commits go to 'main' only, not {_show(rev)}")
        if not lines or not isinstance(lines[0], dict) or lines[0].get("key") != "header":
            raise HubError(400, 'a commit body starts with a {"key": "header"} line')
        header = lines[0].get("value")
        if not isinstance(header, dict):
            raise HubError(400, "the commit header's value must be an object")
        if len(lines) - 1 > MAX_COMMIT_OPS:
            raise HubError(
                422, f"a commit may hold at most {MAX_COMMIT_OPS} operations, this one has {len(lines) - 1}"
            )
        kind = self._commit_kind(name, lines[1:])
        if kind == "results":
            with self._lock(name):
                try:
                    if not self.results.has(name):  # the first commit of a repo decides
                        if self.versions(name):
                            raise HubError(
                                422, f"{name} is an artifact repo: result records go to a results repo"
                            )
                        self.create(name)
                        self.results.init(name)
                    oid = self.results.commit(name, header, lines[1:])
                finally:
                    self.invalidate(name)
            return self._results_commit(name, oid)
        parent = header.get("parentCommit")
        if parent is not None and (not isinstance(parent, str) or not is_commit_id(parent)):
            raise HubError(400, "parentCommit must be a 40-hex commit id")
        with self._lock(name):
            if self.results.has(name):
                raise HubError(
                    422, f"{name} is a results repo: a commit may only add or replace result records"
                )
            head = self.head(name)
            if parent is not None and parent != head.oid:
                raise HubError(
                    412,
                    f"parentCommit {parent[:12]} is not the head of main "
                    f"({head.oid[:12]}): a commit happened since; refresh and retry",
                )
            tree: dict[str, Entry] = dict(self.tree(head))
            for op in lines[1:]:
                self._apply(name, tree, op)
                if len(tree) > MAX_EXTRAS + MAX_COMMIT_OPS:  # before reading more content
                    raise HubError(422, f"the commit makes more than {MAX_EXTRAS + MAX_COMMIT_OPS} files")
            try:
                return self._commit_tree(name, head, tree)
            finally:
                self.invalidate(name)

    def _commit_kind(self, name: str, ops: list[Any]) -> str:
        """ "results" for a results repo, or for a commit of only record files into a repo with
        no version (its first commit decides); "artifact" otherwise. A record file in an
        artifact commit is refused here (it would silently ride along as an extra file)."""
        self.require(name)
        if self.results.has(name):
            return "results"
        paths = [
            op["value"].get("path")
            for op in ops
            if isinstance(op, dict)
            and isinstance(op.get("value"), dict)
            and op.get("key") in ("file", "lfsFile")
        ]
        records = [p for p in paths if isinstance(p, str) and is_record_path(p)]
        if records and len(records) == len(ops) and not self.versions(name):
            return "results"
        if records:
            raise HubError(
                422,
                f"{name} is an artifact repo (or this commit mixes kinds): {_show(records[0])} is a "
                "result record; records go to a results repo, in commits of records only",
            )
        return "artifact"

    def _apply(self, name: str, tree: dict[str, Entry], op: Any) -> None:
        if not isinstance(op, dict) or not isinstance(op.get("value"), dict):
            raise HubError(400, 'each commit line is {"key": ..., "value": {...}}')
        key, value = op.get("key"), op["value"]
        path = check_path(value.get("path"))
        if key == "file":
            if value.get("encoding", "base64") != "base64" or not isinstance(value.get("content"), str):
                raise HubError(400, f"{path}: inline content must be a base64 string")
            if len(value["content"]) > (MAX_INLINE_FILE * 4) // 3 + 4:
                raise HubError(413, f"{path}: inline files are limited to {MAX_INLINE_FILE} bytes")
            try:
                data = base64.b64decode(value["content"], validate=True)
            except (binascii.Error, ValueError):
                raise HubError(400, f"{path}: content is not valid base64") from None
            tree[path] = Entry(path, hashlib.sha256(data).hexdigest(), len(data), data=data)
        elif key == "lfsFile":
            oid, size = value.get("oid"), value.get("size")
            if (
                value.get("algo", "sha256") != "sha256"
                or not isinstance(oid, str)
                or not is_sha256_hex(oid)
                or type(size) is not int
                or size < 0
            ):
                raise HubError(400, f"{path}: lfsFile needs algo sha256, a 64-hex oid and a size")
            src = self.lfs_path(oid)
            if src.is_file() and src.stat().st_size == size:
                tree[path] = Entry(path, oid, size, source=src)
            else:
                same = [e for e in tree.values() if e.sha256 == oid and e.size == size]
                if not same:
                    raise HubError(
                        400,
                        f"{path}: LFS object {oid[:12]}… ({size} bytes) was not "
                        "uploaded; upload it through the LFS batch API first",
                    )
                tree[path] = Entry(path, oid, size, source=same[0].source, data=same[0].data)
        elif key == "deletedFile":
            if tree.pop(path, None) is None:
                raise HubError(404, f"cannot delete {path}: no such file", "EntryNotFound")
        elif key == "deletedFolder":
            prefix = path.rstrip("/") + "/"
            gone = [p for p in tree if p.startswith(prefix)]
            if not gone:
                raise HubError(404, f"cannot delete folder {path}: no such folder", "EntryNotFound")
            for p in gone:
                del tree[p]
        else:
            raise HubError(
                400,
                f"unsupported commit operation {_show(str(key))} (file, lfsFile, deletedFile, deletedFolder)",
            )

    def _commit_tree(self, name: str, head: Commit, tree: dict[str, Entry]) -> Commit:
        why = "the commit does not form a valid dcreg/1 artifact"
        if MANIFEST_FILE not in tree:
            raise HubError(422, f"{why}: it has no {MANIFEST_FILE}")
        raw = tree[MANIFEST_FILE].read(MAX_MANIFEST)
        try:
            manifest = parse_manifest(raw, MANIFEST_FILE)
            digest = manifest_digest(manifest)
        except UserError as exc:
            raise HubError(422, f"{why}: {exc}") from None
        files = manifest["files"]
        for fname, e in files.items():
            have = tree.get(fname)
            if have is None:
                raise HubError(422, f"{why}: the manifest lists {fname} but the commit has no such file")
            if have.sha256 != e["sha256"] or have.size != e["size"]:
                raise HubError(
                    422,
                    f"{why}: {fname} has sha256 {have.sha256[:12]}… ({have.size} "
                    f"bytes), the manifest says {str(e['sha256'])[:12]}… "
                    f"({e['size']} bytes)",
                )
        extras = {p: e for p, e in tree.items() if p not in files}
        if len(extras) > MAX_EXTRAS:
            raise HubError(422, f"{why}: {len(extras)} files beside the artifact (at most {MAX_EXTRAS})")
        if head.digest == digest and (
            {p: e.sha256 for p, e in tree.items()} == {p: e.sha256 for p, e in self.tree(head).items()}
        ):
            return head  # nothing changed: the Hub skips empty commits too
        stage = self.hub / "tmp" / tmp_name(suffix=".commit")
        stage.mkdir()
        try:
            for fname in files:
                self._materialize(tree[fname], stage / fname)
            (stage / MANIFEST_FILE).write_bytes(raw)
            live = {i.digest for i in self.versions(name)}
            if digest not in live:
                self._write_extras(name, digest, extras)
            try:
                res = self.store.push(stage, name)
            except StorageError as exc:  # the server's disk, not the commit: no "invalid" claim
                status = 507 if isinstance(exc, DiskFullError) else 503
                raise HubError(
                    status, f"the server cannot store the commit: {str(exc).replace(str(stage) + os.sep, '')}"
                ) from None
            except UserError as exc:
                raise HubError(422, f"{why}: {str(exc).replace(str(stage) + os.sep, '')}") from None
        finally:
            remove_tree(stage)
        info = self.store.resolve(f"{name}@v{res.version}")
        return self._commit(info)

    @staticmethod
    def _materialize(entry: Entry, dst: Path) -> None:
        if entry.data is not None:
            dst.write_bytes(entry.data)
            return
        assert entry.source is not None
        try:
            os.link(entry.source, dst)
        except OSError:
            shutil.copyfile(entry.source, dst)

    def _write_extras(self, name: str, digest: str, extras: Mapping[str, Entry]) -> None:
        record = {}
        for path, e in sorted(extras.items()):
            blob = self.hub / "blobs" / e.sha256
            if not blob.is_file():
                tmp = self.hub / "tmp" / tmp_name(suffix=".blob")
                try:
                    self._materialize(e, tmp)
                    if tmp.stat().st_nlink == 1:
                        os.chmod(tmp, 0o444)
                    os.replace(tmp, blob)
                except BaseException:
                    remove_tree(tmp)
                    raise
            record[path] = {"sha256": e.sha256, "size": e.size}
        target = self._extras_file(name, digest)
        ensure_dir(target.parent)
        atomic_write_bytes(
            target, json.dumps({"files": record}, sort_keys=True).encode(), tmp_dir=self.hub / "tmp"
        )

    # ------------------------------------------------------------------------------------ tags
    def create_tag(self, name: str, rev: str, tag: Any) -> None:
        """Point user tag ``tag`` at ``rev`` (vN tags exist implicitly: only their own commit)."""
        if not isinstance(tag, str):
            raise HubError(400, "tag must be a string")
        if self.results.has(name):
            raise HubError(400, f"{name} is a results repo: it has no tags (its commits are its history)")
        with self._lock(name):  # check and write as one step: one 409, never last-writer-wins
            self._create_tag(name, rev, tag)

    def _create_tag(self, name: str, rev: str, tag: str) -> None:
        commit = self.resolve(name, rev)
        if commit.version is None:
            raise HubError(400, f"{name} has no version to tag yet")
        m = _VTAG.fullmatch(tag)
        if m:
            if int(m.group(1)) != commit.version:
                raise HubError(409, f"tag {tag} is the version number of another commit of {name}")
            return
        try:
            validate_tag(tag)
            current = self.store.tags(name).get(tag)
            if current is not None and current != commit.version:
                raise HubError(409, f"tag {tag} already exists on {name}@v{current}; delete it first")
            self.store.tag(f"{name}@v{commit.version}", tag)
            self.invalidate(name)
        except UserError as exc:
            raise HubError(400, str(exc)) from None

    def delete_tag(self, name: str, tag: str) -> None:
        self.require(name)
        if self.results.has(name):
            raise HubError(404, f"{name} is a results repo: it has no tags", "RevisionNotFound")
        if _VTAG.fullmatch(tag):
            raise HubError(400, f"{tag} is a version number; versions keep their tag")
        try:
            validate_tag(tag)
            with self._lock(name):
                self.store.untag(name, tag)
            self.invalidate(name)
        except NotFoundError as exc:
            raise HubError(404, str(exc), "RevisionNotFound") from None
        except UserError as exc:
            raise HubError(400, str(exc)) from None


def iter_ndjson(body: bytes) -> Iterable[dict[str, Any]]:
    """Parse an NDJSON commit body; HubError 400 on anything that is not one object per line."""
    for n, line in enumerate(body.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except (ValueError, RecursionError):
            raise HubError(400, f"commit line {n} is not valid JSON") from None
        if not isinstance(item, dict):
            raise HubError(400, f"commit line {n} is not a JSON object")
        yield item
