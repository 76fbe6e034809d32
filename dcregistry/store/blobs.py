"""Content-addressed blobs of the local store: manifests, artifact files, snapshots, copies out.

Blob writes are idempotent temp + fsync + rename writes into ``blobs/sha256/..`` (0444), done
outside the store lock and re-checked under it. A version is opened through a *snapshot*: a
directory of hard links to its blobs (copies where links fail). On a store that is not writable
the snapshot is built in a private temporary directory of symlinks instead, so every read
command works on a read-only store.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..canonical import canonical_json, sha256_bytes, sha256_file
from ..errors import IntegrityError, StorageError
from ..fsio import atomic_write_bytes, copy_hashing, ensure_dir, remove_tree, tmp_name
from ..manifest import MANIFEST_FILE, FileEntry, Manifest, manifest_bytes, parse_manifest
from ..refs import is_sha256_hex
from .base import VersionInfo
from .layout import Layout, hex_of

#: Transfers at least this large get a byte progress bar (when progress is on).
PROGRESS_MIN_BYTES = 4 << 20
#: A manifest blob larger than this is refused (manifests are a few KiB).
MAX_MANIFEST_BYTES = 16 << 20

_private_snapshots: list[str] = []


def _cleanup_private() -> None:
    for d in _private_snapshots:
        remove_tree(Path(d))


def progress_bar(total: int, enabled: bool, desc: str) -> Any:
    """A byte progress bar on stderr for large transfers (None when off or small)."""
    if not enabled or total < PROGRESS_MIN_BYTES:
        return None
    from tqdm import tqdm

    return tqdm(
        total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, file=sys.stderr, leave=False
    )


class Blobs:
    """The blob area of a :class:`~.layout.Layout`."""

    def __init__(self, layout: Layout, pause: Callable[[str], None] = lambda stage: None):
        self.layout = layout
        self._pause = pause

    # ---------------------------------------------------------------------------- manifests
    def read_manifest(self, digest: str, ref: str = "") -> Manifest:
        """The manifest stored as blob ``digest``, checked against its hash and shape."""
        path = self.layout.blob_path(hex_of(digest))
        where = f"{ref}: " if ref else ""
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_MANIFEST_BYTES + 1)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise IntegrityError(
                f"{where}manifest blob {digest[:19]}… is missing from the store "
                "(verify the whole store to see what else is)"
            ) from None
        if sha256_bytes(data) != hex_of(digest):
            raise IntegrityError(
                f"{where}manifest blob {digest[:19]}… was modified or corrupted "
                "(its sha256 no longer matches the version digest)"
            )
        manifest = parse_manifest(data, f"{where}manifest blob {digest[:19]}…")
        for fname, entry in manifest["files"].items():
            if not is_sha256_hex(entry["sha256"]):
                raise IntegrityError(f"{where}manifest lists {fname} with a malformed sha256")
        return manifest

    # ------------------------------------------------------------------------------ writing
    def matches(self, entry: FileEntry) -> bool:
        """Whether the blob for a manifest entry exists with the right size and hash."""
        path = self.layout.blob_path(entry["sha256"])
        try:
            if not path.is_file() or path.stat().st_size != entry["size"]:
                return False
        except OSError:
            return False
        return sha256_file(path)[0] == entry["sha256"]

    def put_bytes(self, data: bytes, written: list[str] | None = None) -> str:
        """Store ``data`` as a blob (if not already there); return its hex digest."""
        hexd = sha256_bytes(data)
        path = self.layout.blob_path(hexd)
        if not (path.is_file() and sha256_file(path)[0] == hexd):
            if written is not None:
                written.append(hexd)
            with self.layout.guard():
                ensure_dir(path.parent)
                if path.is_dir() and not path.is_symlink():
                    remove_tree(path)  # something foreign in a blob's place
                atomic_write_bytes(path, data, tmp_dir=self.layout.tmp, mode=0o444)
        return hexd

    def put_file(self, src: Path, fname: str, entry: FileEntry, bar: Any) -> None:
        """Copy ``src`` into the blob area, checking it still hashes as the manifest says."""
        path = self.layout.blob_path(entry["sha256"])
        tmp = self.layout.tmp / tmp_name(suffix=".blob")
        with self.layout.guard():
            try:
                with open(src, "rb") as fin, open(tmp, "xb") as fout:
                    got, size = copy_hashing(
                        fin,
                        fout,
                        on_chunk=bar.update if bar is not None else None,
                        after_first_chunk=lambda: self._pause("blob-write"),
                    )
                    fout.flush()
                    os.fsync(fout.fileno())
                if got != entry["sha256"] or size != entry["size"]:
                    raise IntegrityError(
                        f"{fname}: changed while being pushed (sha256 {got[:12]}… size {size}, "
                        f"the manifest says {entry['sha256'][:12]}… size {entry['size']}); "
                        "nothing stored"
                    )
                os.chmod(tmp, 0o444)
                ensure_dir(path.parent)
                if path.is_dir() and not path.is_symlink():
                    remove_tree(path)
                os.replace(tmp, path)
            except BaseException:
                remove_tree(tmp)
                raise

    def store_all(
        self,
        src_dir: Path,
        manifest: Manifest,
        *,
        check_hash: bool,
        progress: bool = False,
        written: list[str] | None = None,
    ) -> None:
        """Store every file of ``manifest`` (from ``src_dir``) and the manifest itself; the hex
        names of blobs this call creates are appended to ``written``."""
        self.put_bytes(canonical_json(manifest), written)
        todo: list[tuple[str, FileEntry]] = []
        for fname, entry in sorted(manifest["files"].items()):
            if check_hash:
                ok = self.matches(entry)
            else:
                p = self.layout.blob_path(entry["sha256"])
                ok = p.is_file() and p.stat().st_size == entry["size"]
            if not ok:
                todo.append((fname, entry))
        bar = progress_bar(sum(e["size"] for _, e in todo), progress, "push")
        try:
            for fname, entry in todo:
                if written is not None:
                    written.append(entry["sha256"])
                self.put_file(src_dir / fname, fname, entry, bar)
        finally:
            if bar is not None:
                bar.close()

    # ----------------------------------------------------------------------------- reading
    def verify(self, info: VersionInfo, manifest: Manifest) -> None:
        """Re-hash every blob of a version; IntegrityError names the first bad file."""
        for fname, entry in sorted(manifest["files"].items()):
            blob = self.layout.blob_path(entry["sha256"])
            try:
                got, size = sha256_file(blob)
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                raise IntegrityError(
                    f"{info.ref}: {fname}: blob sha256:{entry['sha256'][:12]}… is missing from the store"
                ) from None
            if got != entry["sha256"] or size != entry["size"]:
                raise IntegrityError(
                    f"{info.ref}: {fname}: the stored blob hashes to sha256:{got[:12]}…, the "
                    f"manifest says sha256:{entry['sha256'][:12]}… (the store copy was modified or "
                    "corrupted; push the original artifact again to repair it)"
                )

    def materialize(self, info: VersionInfo, manifest: Manifest) -> Path:
        """A directory holding the version's files (a snapshot; private if the store is read-only)."""
        snap = self.layout.snapshot_path(info.digest)
        if snap.is_dir() and not snap.is_symlink():
            return snap
        if not self.layout.writable():
            return self._private_snapshot(info, manifest)
        try:
            with self.layout.guard():
                return self._shared_snapshot(info, manifest, snap)
        except StorageError:
            return self._private_snapshot(info, manifest)  # e.g. snapshots/ alone not writable

    def _missing(self, info: VersionInfo, fname: str, entry: FileEntry) -> IntegrityError:
        return IntegrityError(
            f"{info.ref}: {fname}: blob sha256:{entry['sha256'][:12]}… is missing from the store"
        )

    def _shared_snapshot(self, info: VersionInfo, manifest: Manifest, snap: Path) -> Path:
        ensure_dir(snap.parent)
        ensure_dir(self.layout.tmp)
        if snap.exists() or snap.is_symlink():
            remove_tree(snap)  # a file or link in a snapshot's place: not ours
        tmp = self.layout.tmp / tmp_name(suffix=".snap")
        tmp.mkdir()
        try:
            for fname, entry in manifest["files"].items():
                blob = self.layout.blob_path(entry["sha256"])
                if not blob.is_file():
                    raise self._missing(info, fname, entry)
                try:
                    os.link(blob, tmp / fname)
                except OSError:
                    import shutil

                    shutil.copyfile(blob, tmp / fname)
                    os.chmod(tmp / fname, 0o444)
            (tmp / MANIFEST_FILE).write_bytes(manifest_bytes(manifest))
            os.chmod(tmp / MANIFEST_FILE, 0o444)
            try:
                os.rename(tmp, snap)
            except OSError:
                if not snap.is_dir():
                    raise
                remove_tree(tmp)  # another process materialized it first
        except BaseException:
            remove_tree(tmp)
            raise
        return snap

    def _private_snapshot(self, info: VersionInfo, manifest: Manifest) -> Path:
        import atexit
        import tempfile

        if not _private_snapshots:
            atexit.register(_cleanup_private)
        d = Path(tempfile.mkdtemp(prefix="dcreg-snapshot-"))
        _private_snapshots.append(str(d))
        for fname, entry in manifest["files"].items():
            blob = self.layout.blob_path(entry["sha256"])
            if not blob.is_file():
                raise self._missing(info, fname, entry)
            os.symlink(blob.absolute(), d / fname)
        (d / MANIFEST_FILE).write_bytes(manifest_bytes(manifest))
        return d

    def copy_out(self, info: VersionInfo, manifest: Manifest, dest: Path, bar: Any, out_label: Path) -> None:
        """Copy every file of a version into directory ``dest``, checking each hash as it goes."""
        for fname, entry in sorted(manifest["files"].items()):
            blob = self.layout.blob_path(entry["sha256"])
            try:
                fin = open(blob, "rb")
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                raise IntegrityError(
                    f"{info.ref}: {fname}: blob is missing from the store; nothing was written to {out_label}"
                ) from None
            with fin, open(dest / fname, "xb") as fout:
                got, size = copy_hashing(fin, fout, on_chunk=bar.update if bar is not None else None)
                fout.flush()
            if got != entry["sha256"] or size != entry["size"]:
                raise IntegrityError(
                    f"{info.ref}: {fname}: the stored blob hashes to sha256:{got[:12]}…, the "
                    f"manifest says sha256:{entry['sha256'][:12]}… (the store copy was "
                    f"modified or corrupted); nothing was written to {out_label}"
                )
        (dest / MANIFEST_FILE).write_bytes(manifest_bytes(manifest))


def live_blob_names(manifests: Sequence[Mapping[str, Any]], digests: list[str]) -> set[str]:
    """Hex names of every blob the given versions need (their files and manifests)."""
    keep = {hex_of(d) for d in digests}
    for m in manifests:
        keep.update(e["sha256"] for e in m["files"].values())
    return keep


__all__ = ["Blobs", "progress_bar", "live_blob_names", "PROGRESS_MIN_BYTES", "MAX_MANIFEST_BYTES"]
