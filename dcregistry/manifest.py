"""The manifest of a ``dcreg/1`` artifact: what files it has, their sha256 and sizes, and the
metadata. The version digest is the sha256 of the canonical manifest.

Kept apart from :mod:`dcregistry.artifact` (tensors, numpy) so that store commands that only
need manifests (list, show, tag) start without importing numpy.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict, cast

from .canonical import canonical_json, sha256_bytes, sha256_file
from .errors import IntegrityError, JSONFormatError, MetadataError, NotAnArtifactError, UserError
from .jsonsafe import loads_bounded
from .refs import is_artifact_file_name, is_sha256_hex

FORMAT = "dcreg/1"
DATA_FILE = "data.safetensors"
CARD_FILE = "README.md"
MANIFEST_FILE = "manifest.json"
REQUIRED_FILES = (DATA_FILE, CARD_FILE)
#: A manifest holds metadata and two file entries; a few KB normally. Same cap as the header.
MAX_MANIFEST_BYTES = 8 * 1024 * 1024
#: File entries a manifest may list, and the largest size one may declare (1 PiB).
MAX_MANIFEST_FILES = 64
MAX_FILE_SIZE = 1 << 50


class FileEntry(TypedDict):
    """What a manifest records of one file."""

    sha256: str  # 64 hex digits
    size: int


class Manifest(TypedDict):
    """A ``dcreg/1`` manifest (``manifest.json``), as :func:`check_manifest_shape` accepts it."""

    format: str
    # not part of the shape check: open_artifact validates it (validate_metadata), and a
    # store holds only manifests that were validated when pushed
    metadata: dict[str, Any]
    files: dict[str, FileEntry]


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """The bytes of ``manifest.json``: indented, sorted keys, a final newline. The one writer of
    them (artifact build, blob store, Hub client and cache, server), so a version's file is the
    same everywhere; its digest is over the canonical JSON, not these bytes."""
    return (json.dumps(dict(manifest), indent=2, sort_keys=True) + "\n").encode("utf-8")


def manifest_digest(manifest: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``manifest``: the version digest."""
    return "sha256:" + sha256_bytes(canonical_json(manifest))


def make_manifest(metadata: Mapping[str, Any], directory: Path) -> Manifest:
    """The manifest for the files in ``directory`` (every required file, hashed)."""
    files: dict[str, FileEntry] = {}
    for name in REQUIRED_FILES:
        digest, size = sha256_file(directory / name)
        files[name] = {"sha256": digest, "size": size}
    return {"format": FORMAT, "metadata": dict(metadata), "files": files}


def read_manifest(path: str | Path) -> Manifest:
    """Parse ``manifest.json`` of an artifact directory; raise a UserError if absent or bad."""
    mpath = Path(path) / MANIFEST_FILE
    if not mpath.is_file():
        raise NotAnArtifactError(f"{path} is not a dcreg artifact: it has no {MANIFEST_FILE}")
    if mpath.stat().st_size > MAX_MANIFEST_BYTES:
        raise IntegrityError(
            f"{mpath}: is {mpath.stat().st_size} bytes, above the "
            f"{MAX_MANIFEST_BYTES}-byte cap for a manifest (corrupt or hostile)"
        )
    return parse_manifest(mpath.read_bytes(), str(mpath))


def parse_manifest(raw: bytes, what: str) -> Manifest:
    """``manifest.json`` bytes from anywhere (a directory, a blob, a Hub server, an upload) as a
    checked manifest: bounded JSON parse (IntegrityError naming ``what``), then the shape check."""
    try:
        manifest = loads_bounded(raw, what, max_bytes=MAX_MANIFEST_BYTES)
    except JSONFormatError as exc:
        raise IntegrityError(str(exc)) from None
    return as_manifest(manifest)


def as_manifest(obj: object) -> Manifest:
    """``obj`` (parsed JSON) typed as a manifest once :func:`check_manifest_shape` accepted it."""
    check_manifest_shape(obj)
    return cast(Manifest, obj)  # checked just above: format, files and their entries


def check_manifest_shape(manifest: Any) -> None:
    """Raise if ``manifest`` is not a dcreg/1 manifest object (format, metadata, files)."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise MetadataError(
            "manifest.format", f"is not {FORMAT!r}", "this file was not written by a dcreg/1 producer"
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or any(f not in files for f in REQUIRED_FILES):
        raise MetadataError("manifest.files", f"must list {', '.join(REQUIRED_FILES)}")
    if len(files) > MAX_MANIFEST_FILES:
        raise MetadataError("manifest.files", f"lists {len(files)} files, more than {MAX_MANIFEST_FILES}")
    for name, entry in files.items():
        if not is_artifact_file_name(name):
            raise MetadataError(
                f"manifest.files.{str(name)[:60]!r}",
                "is not a safe file name (one component of at most 128 letters, digits, '.', '_' or '-')",
            )
        size = entry.get("size") if isinstance(entry, dict) else None
        if (
            not isinstance(entry, dict)
            or not is_sha256_hex(entry.get("sha256"))
            or type(size) is not int
            or not 0 <= size <= MAX_FILE_SIZE
        ):
            raise MetadataError(
                f"manifest.files.{name}",
                f"is not a file entry with a 64-hex sha256 and a size from 0 to {MAX_FILE_SIZE}",
            )


def verify_files(path: str | Path, manifest: Mapping[str, Any]) -> None:
    """Raise IntegrityError naming the first file whose size or sha256 differs from ``manifest``."""
    path = Path(path)
    for name, entry in sorted(manifest["files"].items()):
        fpath = path / name
        if not fpath.is_file():
            raise IntegrityError(f"{name}: missing from {path}")
        digest, size = sha256_file(fpath)
        if size != entry["size"] or digest != entry["sha256"]:
            raise IntegrityError(
                f"{name}: sha256 {digest[:12]}… does not match the manifest's "
                f"{entry['sha256'][:12]}… (the file was modified or corrupted)"
            )


def holds_artifact(directory: str | Path, digest: str) -> bool:
    """Whether ``directory`` holds the verified artifact whose version digest is ``digest``."""
    try:
        manifest = read_manifest(directory)
        if manifest_digest(manifest) != digest:
            return False
        verify_files(directory, manifest)
        return True
    except (UserError, OSError, ValueError):
        return False


#: The files of a dcreg/1 artifact directory.
ARTIFACT_FILES = frozenset({MANIFEST_FILE, *REQUIRED_FILES})


def is_artifact_dir(path: str | Path) -> bool:
    """Whether ``path`` is a real directory holding only dcreg/1 artifact files (ours to replace).

    An absent path counts as replaceable; a symlink, device, other directory or file does not."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return True
    if not stat.S_ISDIR(st.st_mode):
        return False
    with os.scandir(path) as entries:
        kinds = [(e.name, e.is_file(follow_symlinks=False)) for e in entries]
    names = {n for n, is_file in kinds if is_file}
    return MANIFEST_FILE in names and names <= ARTIFACT_FILES and len(names) == len(kinds)


__all__ = [
    "Manifest",
    "FileEntry",
    "as_manifest",
    "FORMAT",
    "DATA_FILE",
    "CARD_FILE",
    "MANIFEST_FILE",
    "REQUIRED_FILES",
    "MAX_MANIFEST_BYTES",
    "manifest_digest",
    "make_manifest",
    "read_manifest",
    "check_manifest_shape",
    "verify_files",
    "is_artifact_dir",
    "ARTIFACT_FILES",
    "holds_artifact",
]
