"""Maintenance of the local store: the metadata index kept in step with the version files,
``verify --all`` (every version re-hashed, and every unexpected entry in the tree reported) and
garbage collection. Functions take the :class:`~.local.LocalStore` they work on (typed as
:class:`LocalParts`, the parts of it they use, so this module does not import that one)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Protocol

from ..errors import UserError
from ..fsio import is_tmp_name, remove_tree, tmp_owner_alive
from ..manifest import Manifest
from ..refs import Ref, is_sha256_hex, validate_name, version_number
from .annotations import Annotations
from .base import GcReport, RefLike, VerifyReport, VersionCheck, VersionInfo
from .blobs import Blobs, live_blob_names
from .index import Index, IndexRow
from .layout import TOP_LEVEL, Layout, hex_of, is_dir_entry, is_file_entry, list_dir
from .tags import TagLog


class LocalParts(Protocol):
    """What maintenance uses of a :class:`~.local.LocalStore`."""

    layout: Layout
    blobs: Blobs
    tag_store: TagLog
    annotation_store: Annotations

    def _resolve(self, ref: RefLike, *, strict: bool) -> VersionInfo: ...

    def verify(self, ref: RefLike) -> VersionInfo: ...


REPO_ENTRIES = {"versions": "dir", "removed": "dir", "annotations": "dir", "tags.log": "file"}


# -------------------------------------------------------------------------------------- index
def index_row(store: LocalParts, name: str, version: int) -> IndexRow:
    """What the index should hold for one live version ({} metadata if it is damaged)."""
    try:
        rec = store.layout.read_version(name, version)
    except UserError:
        return IndexRow(name, version, "", None, {})
    try:
        md = store.blobs.read_manifest(rec.digest)["metadata"]
    except (UserError, ValueError):
        md = {}
    return IndexRow(name, version, rec.digest, rec.created_at, md if isinstance(md, dict) else {})


def sync_index(store: LocalParts, idx: Index, files: set[tuple[str, int]] | None = None) -> None:
    """Make ``idx`` hold exactly the live versions."""
    files = store.layout.scan() if files is None else files
    have = idx.keys()
    if files == have:
        return
    idx.delete(have - files)
    idx.upsert([index_row(store, n, v) for n, v in sorted(files - have)])


def live_versions(
    store: LocalParts, recorded: Mapping[str, tuple[str, list[int]]]
) -> tuple[dict[str, list[int]], dict[str, tuple[str, list[int]]], bool]:
    """Live version numbers per name, and the signatures to record, and whether every name was
    answered from ``recorded`` (the signatures the index stored with its last check). A name
    whose versions directory still has its recorded signature is taken from ``recorded``
    instead of listing the directory, which keeps ``list`` fast on large stores."""
    layout = store.layout
    out: dict[str, list[int]] = {}
    fresh: dict[str, tuple[str, list[int]]] = {}
    trusted = True
    for name in layout.names():
        sig = layout.versions_signature(name)  # before listing: a later change is seen next time
        rec = recorded.get(name)
        if sig is not None and rec is not None and rec[0] == sig:
            vs = rec[1]
        else:
            vs = layout.version_numbers(name)
            trusted = False
        if vs:
            out[name] = vs
        if sig is not None:
            fresh[name] = (sig, vs)
    return out, fresh, trusted and set(fresh) == set(recorded)


def open_index(store: LocalParts) -> tuple[Index, dict[str, list[int]]]:
    """An index in step with the version files, and the live version numbers per name.

    The on-disk index (repaired under the lock if stale; a read-only view of it on a read-only
    store), or an in-memory one built from the files. When every versions directory still has
    the signature recorded at the index's last check, the index is known to be in step
    without comparing it row by row."""
    layout = store.layout
    writable = layout.writable()
    idx = None
    if layout.index_path.is_file() or writable:
        try:
            idx = Index(layout.index_path, read_only=not writable)
        except sqlite3.Error:
            idx = None
        if idx is not None and idx.in_memory:
            idx.close()
            idx = None
    recorded: dict[str, tuple[str, list[int]]] = {}
    if idx is not None:
        try:
            recorded = idx.scans()
        except sqlite3.Error:
            recorded = {}
    by_name, fresh, trusted = live_versions(store, recorded)
    if idx is not None and trusted:
        return idx, by_name
    files = {(n, v) for n, vs in by_name.items() for v in vs}
    if idx is not None:
        try:
            if files == idx.keys():
                if writable:
                    idx.set_scans(fresh)
                return idx, by_name
            if writable:
                with layout.locked(timeout=min(layout.lock_timeout, 10.0)):
                    sync_index(store, idx)
                    # re-list under the lock: what the index now holds is what is recorded
                    by_name, fresh, _ = live_versions(store, {})
                    idx.set_scans(fresh)
                return idx, by_name
        except (UserError, sqlite3.Error, OSError):
            pass  # locked by a long writer, or not writable: answer from the files
        except BaseException:
            idx.close()
            raise
        idx.close()
    mem = Index(None)
    sync_index(store, mem, files)
    return mem, by_name


def _index_best_effort(store: LocalParts, change: Callable[[Index], None]) -> None:
    """Apply ``change`` to the on-disk index (under the lock); the next query repairs a failure."""
    try:
        with Index(store.layout.index_path) as idx:
            if not idx.in_memory:
                change(idx)
    except (sqlite3.Error, OSError):
        pass


def index_put(store: LocalParts, rows: list[IndexRow]) -> None:
    """Best-effort index update (under the lock)."""
    _index_best_effort(store, lambda idx: idx.upsert(rows))


def index_delete(store: LocalParts, keys: list[tuple[str, int]]) -> None:
    """Best-effort removal of index rows (under the lock)."""
    _index_best_effort(store, lambda idx: idx.delete(keys))


def rebuild_index(store: LocalParts) -> int:
    """Drop and rebuild ``index.sqlite`` from the version files; return the row count."""
    with store.layout.locked():
        remove_tree(store.layout.index_path)
        with Index(store.layout.index_path) as idx:
            sync_index(store, idx)
            return len(idx.keys())


# ------------------------------------------------------------------------------------- verify
def anomalies(store: LocalParts) -> list[str]:
    """Every entry in the store's tree that is not part of its layout (all skipped elsewhere),
    plus skipped tag-log lines and damaged annotation files."""
    root = store.layout.root
    out: list[str] = []

    def odd(path: str, what: str = "unexpected entry") -> None:
        out.append(f"{what}: {os.path.relpath(path, root)} (ignored by the store)")

    for e in list_dir(root):
        if e.name not in TOP_LEVEL:
            odd(e.path)
        elif e.name in ("blobs", "repos", "tmp", "snapshots") and not is_dir_entry(e):
            odd(e.path, "not a directory")
    blobs = root / "blobs"
    for e in list_dir(blobs):
        if e.name != "sha256" or not is_dir_entry(e):
            odd(e.path)
    for sub in list_dir(blobs / "sha256"):
        if not (is_dir_entry(sub) and len(sub.name) == 2 and is_sha256_hex(sub.name * 32)):
            odd(sub.path)
            continue
        for e in list_dir(Path(sub.path)):
            if not (is_sha256_hex(e.name) and e.name.startswith(sub.name) and is_file_entry(e)):
                odd(e.path)
    for e in list_dir(root / "snapshots"):
        if not (is_sha256_hex(e.name) and is_dir_entry(e)):
            odd(e.path)
    for ns in list_dir(root / "repos"):
        if not is_dir_entry(ns):
            odd(ns.path)
            continue
        try:
            validate_name(f"{ns.name}/x")
        except UserError:
            odd(ns.path, "not a valid namespace")
            continue
        for nm in list_dir(Path(ns.path)):
            try:
                name = validate_name(f"{ns.name}/{nm.name}")
            except UserError:
                odd(nm.path, "not a valid artifact name")
                continue
            if not is_dir_entry(nm):
                odd(nm.path)
                continue
            out.extend(_repo_anomalies(store, name, Path(nm.path), odd))
    return out


def _repo_anomalies(store: LocalParts, name: str, repo: Path, odd: Callable[[str], None]) -> list[str]:
    found: list[str] = []
    for e in list_dir(repo):
        want = REPO_ENTRIES.get(e.name)
        if (
            want is None
            or (want == "dir" and not is_dir_entry(e))
            or (want == "file" and not is_file_entry(e))
        ):
            odd(e.path)
    for sub in ("versions", "removed"):
        for e in list_dir(repo / sub):
            if version_number(e.name) is None or not is_file_entry(e):
                if not e.name.startswith("."):
                    odd(e.path)
    live = store.layout.version_numbers(name)
    for e in list_dir(repo / "annotations"):
        v = version_number(e.name)
        if v is None or not is_dir_entry(e):
            odd(e.path)
            continue
        for a in list_dir(Path(e.path)):
            if not a.name.endswith(".json"):
                odd(a.path)
        if v in live:
            try:
                info = VersionInfo(name, v, store.layout.read_version(name, v).digest, (), None)
            except UserError:
                continue
            store.annotation_store.read(info, problems=found)
    found.extend(store.tag_store.read(name, warn=False)[1])
    return found


def verify_all(store: LocalParts) -> VerifyReport:
    """Verify every live version; failures and store anomalies go into the report."""
    report = VerifyReport()
    for name, version in sorted(store.layout.scan()):
        try:
            store.layout.read_version(name, version)
            info = store._resolve(Ref("name", name, "version", version), strict=False)
        except UserError as exc:
            report.checks.append(VersionCheck(VersionInfo(name, version, "", (), None, {}), exc))
            continue
        try:
            store.verify(info)
            report.checks.append(VersionCheck(info, None))
        except UserError as exc:
            report.checks.append(VersionCheck(info, exc))
    report.anomalies = anomalies(store)
    return report


# ----------------------------------------------------------------------------------------- gc
def private_bytes(path: Path) -> int:
    """Bytes freed by deleting ``path`` (files with other hard links free nothing)."""
    total = 0
    paths = [path] if not path.is_dir() or path.is_symlink() else [p for p in path.rglob("*")]
    for p in paths:
        try:
            st = p.lstat()
        except OSError:
            continue
        if not p.is_dir() and st.st_nlink <= 1:
            total += st.st_size
    return total


def live_digests(store: LocalParts) -> set[str]:
    """Digests of every live version whose version file reads."""
    out: set[str] = set()
    for name, version in store.layout.scan():
        try:
            out.add(store.layout.read_version(name, version).digest)
        except UserError:
            pass
    return out


def gc(store: LocalParts, dry_run: bool = True) -> GcReport:
    """Find (and unless ``dry_run`` delete) unreferenced blobs, stale snapshots, dead temp files.

    Entries that are not the store's own (wrong names, directories where blobs belong) are
    listed in ``skipped`` and never deleted. A dry run works on a read-only store."""
    layout = store.layout
    report = GcReport([], 0, [], [], dry_run, [])
    if not layout.root.is_dir():
        return report
    lock = layout.locked() if not dry_run or layout.writable() else nullcontext()
    with lock:
        digests: list[str] = []
        manifests: list[Manifest] = []
        for name, version in sorted(layout.scan()):
            digest = layout.read_version(name, version).digest
            manifests.append(store.blobs.read_manifest(digest, f"{name}@v{version}"))
            digests.append(digest)
        keep = live_blob_names(manifests, digests)
        live_hex = {hex_of(d) for d in digests}
        rel: Callable[[str | Path], str] = lambda p: os.path.relpath(p, layout.root)  # noqa: E731
        for sub in list_dir(layout.root / "blobs" / "sha256"):
            if not (is_dir_entry(sub) and len(sub.name) == 2 and is_sha256_hex(sub.name * 32)):
                report.skipped.append(rel(sub.path))
                continue
            for entry in list_dir(Path(sub.path)):
                if not (
                    is_sha256_hex(entry.name) and entry.name.startswith(sub.name) and is_file_entry(entry)
                ):
                    report.skipped.append(rel(entry.path))
                    continue
                if entry.name in keep:
                    continue
                report.blobs.append(f"sha256:{entry.name}")
                report.bytes += entry.stat(follow_symlinks=False).st_size
                if not dry_run:
                    remove_tree(Path(entry.path))
        for entry in list_dir(layout.root / "snapshots"):
            if not (is_sha256_hex(entry.name) and is_dir_entry(entry)):
                report.skipped.append(rel(entry.path))
                continue
            if entry.name not in live_hex:
                report.snapshots.append(f"sha256:{entry.name}")
                report.bytes += private_bytes(Path(entry.path))
                if not dry_run:
                    remove_tree(Path(entry.path))
        for path in dead_tmp_entries(layout.root, layout.tmp):
            report.tmp.append(rel(path))
            report.bytes += private_bytes(path)
            if not dry_run:
                remove_tree(path)
    return report


def dead_tmp_entries(root: Path, tmp_dir: Path) -> list[Path]:
    """Temp files and directories under ``root`` whose writer no longer runs: every entry of
    ``tmp_dir``, and anything elsewhere with a temp name (staged writes sit next to their target).
    Symlinks are not followed; a live writer's entries are left alone."""
    out: list[Path] = []
    tmp_real = os.path.realpath(tmp_dir)
    for dirpath, dirs, files in os.walk(root, followlinks=False):
        in_tmp = os.path.realpath(dirpath) == tmp_real
        for name in list(dirs) + files:
            if (in_tmp or is_tmp_name(name)) and not tmp_owner_alive(name):
                out.append(Path(dirpath) / name)
                if name in dirs:
                    dirs.remove(name)
    return sorted(out)


__all__ = [
    "open_index",
    "sync_index",
    "index_put",
    "index_delete",
    "rebuild_index",
    "anomalies",
    "verify_all",
    "gc",
    "dead_tmp_entries",
    "live_digests",
    "private_bytes",
]
