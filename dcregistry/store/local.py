"""The embedded local store: :class:`LocalStore` implements :class:`~.base.Store` on a directory.

Its parts, one module each: :mod:`.layout` (paths, version files, lock), :mod:`.blobs`
(content-addressed files, snapshots, copies out), :mod:`.tags` (the tag log), :mod:`.annotations`,
:mod:`.maintenance` (index, verify --all, gc) and :mod:`.index`/:mod:`.query` (metadata
queries). This module holds the version lifecycle: resolve, push, open, pull, list, tag, rm.

Every write is atomic (temp + fsync + rename, :mod:`dcregistry.fsio`), and a process killed at
any point leaves at worst unreferenced blobs and temp files, which ``gc`` removes, and an index
that the next query repairs. A push's version file is its commit point: the version, its tags
(logged with the push's txn id, see :mod:`.tags`) and its blobs appear together or not at all.
Every read works on a read-only store; writes there raise StoreReadOnlyError.

Test hook: with ``DCREG_TEST_PAUSE_AT=<stage>`` in the environment, ``push`` prints
``DCREG_TEST_PAUSED <stage>`` on stderr and sleeps (``DCREG_TEST_PAUSE_SECONDS``, default 3600)
when it reaches that stage, so tests can SIGKILL it there. Stages: ``blob-write`` (a blob's temp
file is half written), ``blobs-written`` (all blobs stored, lock not taken yet), ``tags-logged``
(lock held, the new version's tags logged, its version file not yet renamed into place),
``version-written`` (version file in place, index not updated).
"""

from __future__ import annotations

import builtins
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import (
    IntegrityError,
    InvalidReferenceError,
    NotFoundError,
    OutputExistsError,
    TagProtectedError,
    UserError,
)
from ..fsio import (
    check_output_path,
    ensure_dir,
    fsync_dir,
    refuse_inside,
    remove_tree,
    staged_dir,
    translate_os_errors,
)
from ..manifest import Manifest, holds_artifact, manifest_digest
from ..refs import LATEST, Ref, is_sha256_hex, parse_name_ref, validate_name
from . import maintenance
from .annotations import Annotations
from .base import (
    EVAL_KIND,
    AnnotatingStore,
    GcReport,
    MaintainableStore,
    PushResult,
    RefLike,
    VerifyReport,
    VersionInfo,
    WritableStore,
)
from .blobs import Blobs, live_blob_names, progress_bar
from .index import IndexRow
from .layout import Layout, VersionRecord, default_root
from .query import parse_terms
from .select import Candidate, select_version
from .tags import TagLog, user_tag

if TYPE_CHECKING:
    from ..artifact import Artifact

__all__ = ["LocalStore", "default_root", "EVAL_KIND", "TEST_PAUSE_ENV", "PAUSE_STAGES"]

TEST_PAUSE_ENV = "DCREG_TEST_PAUSE_AT"
PAUSE_STAGES = ("blob-write", "blobs-written", "tags-logged", "version-written")


def _test_pause(stage: str) -> None:
    if os.environ.get(TEST_PAUSE_ENV) == stage:
        sys.stderr.write(f"DCREG_TEST_PAUSED {stage}\n")
        sys.stderr.flush()
        time.sleep(float(os.environ.get("DCREG_TEST_PAUSE_SECONDS", "3600")))


class LocalStore(WritableStore, AnnotatingStore, MaintainableStore):
    """The embedded versioned store at ``root`` (default ``$DCREG_HOME`` or ``~/.cache/dcreg``)."""

    def __init__(self, root: str | Path | None = None, *, lock_timeout: float = 300.0):
        self.root = Path(root).expanduser() if root is not None else default_root()
        self.location = str(self.root)
        self.layout = Layout(self.root, lock_timeout)
        self.blobs = Blobs(self.layout, _test_pause)
        self.tag_store = TagLog(self.layout)
        self.annotation_store = Annotations(self.layout)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    @property
    def lock_timeout(self) -> float:
        return self.layout.lock_timeout

    @property
    def read_only(self) -> bool:
        """Whether writes are impossible (read-only filesystem or no write permission)."""
        return not self.layout.writable()

    # ------------------------------------------------------------------------------ resolving
    def _parse(self, ref: RefLike) -> Ref:
        if isinstance(ref, VersionInfo):
            return Ref("name", ref.name, "version", ref.version)
        if isinstance(ref, Ref):
            r = ref
        elif isinstance(ref, str):
            if ref.startswith("hf://"):
                raise InvalidReferenceError(
                    f"{ref[:200]!r}: Hugging Face Hub references are not "
                    "available in a local store; open them through the "
                    "hub store"
                )
            r = parse_name_ref(ref)
        else:
            raise InvalidReferenceError(f"not a reference: {type(ref).__name__}")
        if r.kind != "name":
            raise InvalidReferenceError(
                f"{r} is not a reference into a local store (use ns/name[@v3|@tag|@sha256:..])"
            )
        return r

    def resolve(self, ref: RefLike) -> VersionInfo:
        """The version ``ref`` names (``ns/name``, ``@vN``, ``@tag``, ``@latest``, ``@sha256:<prefix>``)."""
        return self._resolve(ref, strict=True)

    def _resolve(self, ref: RefLike, *, strict: bool) -> VersionInfo:
        r = self._parse(ref)
        name = r.name
        assert name is not None
        live = self.layout.live(name)
        if not live:
            raise NotFoundError(self.layout.no_such_name(name))
        tags = self.tag_store.current(name, live)
        chosen = select_version(
            (
                Candidate(v, rec.digest, tuple(t for t, tv in tags.items() if tv == v))
                for v, rec in live.items()
            ),
            r,
            was_removed=lambda v: v in self.layout.version_numbers(name, "removed"),
        )
        version = chosen.version
        rec = live[version]
        try:
            metadata = self.blobs.read_manifest(rec.digest, f"{name}@v{version}")["metadata"]
        except UserError:
            if strict:
                raise
            metadata = {}
        return VersionInfo(name, version, rec.digest, chosen.tags, rec.created_at, metadata)

    def manifest(self, ref: RefLike) -> Manifest:
        """The manifest of the version ``ref`` names (format, metadata, files with sha256/size)."""
        info = self.resolve(ref)
        return self.blobs.read_manifest(info.digest, info.ref)

    # ----------------------------------------------------------------------------------- push
    def push(
        self, path: str | Path, name: str, tags: Sequence[str] = (), *, progress: bool = False
    ) -> PushResult:
        """Store the artifact directory ``path`` as the next version of ``name``.

        Identical content already live under ``name`` is not stored again: its version is
        returned with ``created=False`` (the tags are still applied). A new version and its
        tags appear together (the version file, renamed last, commits both)."""
        validate_name(name)
        tags = tuple(dict.fromkeys(user_tag(t) for t in tags))
        from ..artifact import open_artifact

        art = open_artifact(path, verify=True)  # full validation before the store is touched
        manifest = art.manifest
        for fname, entry in manifest["files"].items():
            if not is_sha256_hex(entry["sha256"]):
                raise IntegrityError(f"manifest lists {fname} with a malformed sha256")
        digest = manifest_digest(manifest)
        self.layout.ensure()
        written: list[str] = []
        try:
            self.blobs.store_all(art.path, manifest, check_hash=True, progress=progress, written=written)
            _test_pause("blobs-written")
            with self.layout.locked():
                # gc may have collected blobs written before we took the lock: put them back.
                self.blobs.store_all(art.path, manifest, check_hash=False, written=written)
                return self._commit(name, digest, manifest, tags)
        except BaseException as exc:
            if written and isinstance(exc, Exception):
                self._discard_blobs(written)
            raise

    def _discard_blobs(self, hexes: list[str]) -> None:
        """Best effort after a failed push (e.g. disk full): remove the blobs it wrote that no
        live version uses, so nothing of it is left (gc would find them otherwise)."""
        try:
            with self.layout.locked(timeout=min(self.lock_timeout, 10.0)):
                digests = [self.layout.read_version(n, v).digest for n, v in self.layout.scan()]
                manifests = [self.blobs.read_manifest(d) for d in digests]
                keep = live_blob_names(manifests, digests)
                for h in hexes:
                    if h not in keep:
                        blob = self.layout.blob_path(h)
                        remove_tree(blob)
                        try:
                            blob.parent.rmdir()  # only if now empty
                        except OSError:
                            pass
        except (UserError, OSError):
            pass

    def _commit(
        self, name: str, digest: str, manifest: Mapping[str, Any], tags: tuple[str, ...]
    ) -> PushResult:
        """Under the lock: the existing version with ``digest``, or a new one with its tags."""
        live = self.layout.live(name)
        same = sorted(v for v, rec in live.items() if rec.digest == digest)
        if same:
            version, created, created_at = same[0], False, live[same[0]].created_at
            current = self.tag_store.current(name, live)
            for t in tags:
                if current.get(t) != version:
                    self.tag_store.append(name, "set", t, version, digest)
        else:
            version = self.layout.allocated(name) + 1
            from ..metadata import utc_now

            created, created_at = True, utc_now()
            txn = os.urandom(8).hex()
            for t in tags:  # count only once the version file below carries the same txn
                self.tag_store.append(name, "set", t, version, digest, txn=txn)
            _test_pause("tags-logged")
            self.layout.write_version(name, version, VersionRecord(digest, created_at, txn))
            _test_pause("version-written")
        maintenance.index_put(self, [IndexRow(name, version, digest, created_at, manifest["metadata"])])
        return PushResult(name, version, digest, created, tags)

    # ----------------------------------------------------------------------------- open/pull
    def open(self, ref: RefLike, verify: bool = True) -> Artifact:
        """The version ``ref`` names as an Artifact (read-only snapshot dir; ``verify`` re-hashes)."""
        return self._open_info(self.resolve(ref), verify)

    def _open_info(self, info: VersionInfo, verify: bool) -> Artifact:
        from ..artifact import open_artifact

        manifest = self.blobs.read_manifest(info.digest, info.ref)
        for attempt in (0, 1):
            snap = self.blobs.materialize(info, manifest)
            try:
                return open_artifact(snap, verify=verify)
            except IntegrityError as exc:
                if attempt or not snap.is_relative_to(self.root):
                    raise IntegrityError(f"{info.ref}: {exc}") from None
                remove_tree(snap)  # a damaged snapshot (copies): rebuild it once from the blobs
        raise AssertionError("unreachable")

    def pull(self, ref: RefLike, out_dir: str | Path | None = None, *, progress: bool = False) -> Path:
        """Copy the version ``ref`` names to ``out_dir`` (default ``./<name>-v<N>``), verified first.

        ``out_dir`` must be absent or empty (or already hold exactly this version) and lie
        outside the store; nothing appears there unless every file verified."""
        info = self.resolve(ref)
        manifest = self.blobs.read_manifest(info.digest, info.ref)
        out = Path(out_dir) if out_dir is not None else Path(f"{info.name.split('/')[1]}-v{info.version}")
        check_output_path(out)
        refuse_inside(out, self.root, "the store")
        with translate_os_errors(out):
            if out.is_symlink() or out.exists():
                if not out.is_dir():
                    raise OutputExistsError(
                        f"{out} exists and is not a directory; choose another output directory"
                    )
                if any(out.iterdir()):
                    if holds_artifact(out, info.digest):
                        return out
                    raise OutputExistsError(
                        f"{out} exists and is not empty; choose another output directory (or remove it)"
                    )
        with staged_dir(out) as tmp:
            bar = progress_bar(sum(e["size"] for e in manifest["files"].values()), progress, "pull")
            try:
                self.blobs.copy_out(info, manifest, tmp, bar, out)
            finally:
                if bar is not None:
                    bar.close()
            from ..artifact import open_artifact

            open_artifact(tmp, verify=False)  # full validation (hashes were checked while copying)
        return out

    # ----------------------------------------------------------------------------------- list
    def list(
        self, name: str | None = None, query: Sequence[str] | str = (), all_versions: bool = False
    ) -> list[VersionInfo]:
        """Versions matching ``query`` terms (``ipc<=10``...): the highest matching one per name, or all."""
        if name is not None:
            validate_name(name)
        terms = parse_terms(query)
        if not (self.root / "repos").is_dir():
            return []
        idx, by_name = maintenance.open_index(self)
        with idx:
            rows = idx.query(terms, name, highest_only=not all_versions)
        tag_maps = {n: self.tag_store.current(n, by_name.get(n, [])) for n in {r.name for r in rows}}
        return [
            VersionInfo(
                r.name,
                r.version,
                r.digest,
                tuple(t for t, v in tag_maps[r.name].items() if v == r.version),
                r.created_at,
                r.metadata,
            )
            for r in rows
        ]

    # ----------------------------------------------------------------------------------- tags
    def tags(self, name: str) -> dict[str, int]:
        """Current tags of ``name`` -> version number, ``latest`` included (NotFoundError if no versions)."""
        validate_name(name)
        return self.tag_store.current(name, self.layout.require_name(name))

    def tag_log(self, name: str) -> builtins.list[dict[str, Any]]:
        """Every valid entry of ``name``'s append-only tag log, oldest first."""
        validate_name(name)
        return self.tag_store.entries(name)

    def tag(self, ref: RefLike, tag: str) -> VersionInfo:
        """Point ``tag`` at the version ``ref`` names (moving it if it pointed elsewhere)."""
        user_tag(tag)
        self._resolve(ref, strict=False)  # fail before taking the lock (which creates the store)
        with self.layout.locked():
            info = self._resolve(ref, strict=False)
            if self.tag_store.current(info.name, self.layout.live(info.name)).get(tag) != info.version:
                self.tag_store.append(info.name, "set", tag, info.version, info.digest)
            return self._resolve(info, strict=False)

    def untag(self, name: str, tag: str) -> int:
        """Remove ``tag`` from ``name``; return the version it pointed at."""
        validate_name(name)
        user_tag(tag)
        self.layout.require_name(name)
        with self.layout.locked():
            current = self.tag_store.current(name, self.layout.live(name))
            if tag not in current:
                have = ", ".join(f"{t}->v{v}" for t, v in current.items() if t != LATEST)
                raise NotFoundError(f"{name} has no tag {tag!r} (tags: {have or 'none'})")
            version = current[tag]
            digest = self.layout.read_version(name, version).digest
            self.tag_store.append(name, "unset", tag, version, digest)
            return version

    # ---------------------------------------------------------------------------- annotations
    def annotate(self, ref: RefLike, kind: str, record: Mapping[str, Any]) -> str:
        """Attach ``record`` (JSON) of ``kind`` (e.g. "eval") to a version; return its id."""
        info = self.resolve(ref)
        with self.layout.locked():
            return self.annotation_store.add(info, kind, record)

    def annotations(self, ref: RefLike, kind: str | None = None) -> builtins.list[dict[str, Any]]:
        """Annotations of a version, oldest first (``{id, kind, created_at, name, version,
        digest, record}``)."""
        return self.annotation_store.read(self.resolve(ref), kind)

    # ---------------------------------------------------------------------------- maintenance
    def verify(self, ref: RefLike) -> VersionInfo:
        """Re-hash every blob of the version ``ref`` names and validate it; IntegrityError names the file."""
        info = self.resolve(ref)
        self.blobs.verify(info, self.blobs.read_manifest(info.digest, info.ref))
        self._open_info(info, verify=True)
        return info

    def verify_all(self) -> VerifyReport:
        """Verify every live version and report unexpected entries in the store's tree."""
        return maintenance.verify_all(self)

    def rm(self, ref: RefLike, force: bool = False) -> VersionInfo:
        """Remove one version (refused while it carries a user tag unless ``force``); blobs stay until gc."""
        self._resolve(ref, strict=False)  # fail before taking the lock (which creates the store)
        with self.layout.locked():
            info = self._resolve(ref, strict=False)
            user_tags = [t for t in info.tags if t != LATEST]
            if user_tags and not force:
                raise TagProtectedError(
                    f"{info.ref} carries tag(s) {', '.join(user_tags)}; untag it first "
                    f"(untag {info.name} {user_tags[0]}) or force the removal"
                )
            for t in user_tags:
                self.tag_store.append(info.name, "unset", t, info.version, info.digest)
            repo = self.layout.repo(info.name)
            ensure_dir(repo / "removed")
            os.replace(repo / "versions" / f"v{info.version}", repo / "removed" / f"v{info.version}")
            fsync_dir(repo / "versions")
            fsync_dir(repo / "removed")
            maintenance.index_delete(self, [(info.name, info.version)])
            if info.digest and info.digest not in maintenance.live_digests(self):
                remove_tree(self.layout.snapshot_path(info.digest))
        return VersionInfo(info.name, info.version, info.digest, (), info.created_at, info.metadata)

    def gc(self, dry_run: bool = True) -> GcReport:
        """Find (and unless ``dry_run`` delete) unreferenced blobs, stale snapshots and dead temp files."""
        return maintenance.gc(self, dry_run)

    def rebuild_index(self) -> int:
        """Drop and rebuild ``index.sqlite`` from the version files; return the row count."""
        return maintenance.rebuild_index(self)
