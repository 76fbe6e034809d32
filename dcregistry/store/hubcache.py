"""The Hub store's own download cache: nothing a server sends becomes a path.

huggingface_hub's cache names files after the server's ``ETag`` and ``X-Repo-Commit`` headers
and writes ``refs/<revision>`` files; a hostile server could point those outside the cache.
This cache names everything after values the client checked itself::

    <root>/refs/<org>/<name>.json          vN / tag -> commit id (validated), for offline use
    <root>/manifests/<org>/<name>/<commit>.json
                                           manifest bytes as fetched at that commit
    <root>/blobs/<sha256>                  file content whose sha256 is the manifest's (read-only)
    <root>/snapshots/<digest hex>/         an artifact directory: links to the blobs + manifest
    <root>/tmp/                            downloads in progress (temp names, swept when dead)

Repo names, commit ids and sha256 values are validated before they are joined to ``root``, and
nothing is deleted outside it.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..canonical import sha256_file
from ..errors import IntegrityError, JSONFormatError, NotFoundError, UserError
from ..fsio import atomic_write_bytes, ensure_dir, remove_tree, staged_dir, tmp_name
from ..jsonsafe import loads_bounded
from ..manifest import (
    MANIFEST_FILE,
    MAX_MANIFEST_BYTES,
    Manifest,
    manifest_bytes,
    manifest_digest,
    parse_manifest,
)
from ..refs import is_commit_id, is_sha256_hex


class HubCache:
    """Content-addressed, validated storage of what a Hub store downloaded (see module doc)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    # -------------------------------------------------------------------------------- paths
    def _repo_dir(self, kind: str, repo: str) -> Path:
        org, _, name = repo.partition("/")
        if not org or not name or "/" in name or org in (".", "..") or name in (".", ".."):
            raise UserError(f"repo id {repo[:80]!r} is not ORG/NAME")
        return self.root / kind / org / name

    def inside(self, path: Path) -> bool:
        """Whether ``path`` (resolved) lies inside the cache."""
        try:
            Path(os.path.realpath(path)).relative_to(os.path.realpath(self.root))
        except ValueError:
            return False
        return True

    def evict(self, path: Path) -> None:
        """Delete ``path`` if, resolved, it is inside the cache; anything else is left alone."""
        if self.inside(path):
            try:
                os.unlink(path)
            except OSError:
                pass

    # --------------------------------------------------------------------------------- refs
    def save_refs(self, repo: str, versions: Mapping[int, str], tags: Mapping[str, str]) -> None:
        """Remember vN/tag -> commit (best effort: a read-only cache only costs offline use)."""
        path = self._repo_dir("refs", repo).with_suffix(".json")
        doc = {
            "versions": {str(v): o for v, o in sorted(versions.items())},
            "tags": dict(sorted(tags.items())),
        }
        try:
            ensure_dir(path.parent)
            atomic_write_bytes(path, json.dumps(doc, sort_keys=True).encode())
        except (OSError, UserError):
            pass

    def load_refs(self, repo: str) -> tuple[dict[int, str], dict[str, str]]:
        """What :meth:`save_refs` remembered (invalid entries dropped)."""
        path = self._repo_dir("refs", repo).with_suffix(".json")
        try:
            doc = loads_bounded(path.read_bytes(), str(path), max_bytes=1 << 20)
        except (OSError, JSONFormatError):
            return {}, {}
        versions, tags = {}, {}
        if isinstance(doc, dict):
            for k, v in (doc.get("versions") or {}).items() if isinstance(doc.get("versions"), dict) else []:
                if k.isdigit() and is_commit_id(v):
                    versions[int(k)] = v
            for k, v in (doc.get("tags") or {}).items() if isinstance(doc.get("tags"), dict) else []:
                if is_commit_id(v):
                    tags[k] = v
        return versions, tags

    # ---------------------------------------------------------------------------- manifests
    def manifest(self, repo: str, commit: str, fetch: Callable[[], bytes] | None) -> Manifest:
        """The manifest at ``commit``: from the cache, else ``fetch()`` (None: offline)."""
        if not is_commit_id(commit):
            raise IntegrityError(f"{repo}: {commit[:60]!r} is not a commit id")
        path = self._repo_dir("manifests", repo) / f"{commit}.json"
        raw = None
        try:
            if path.stat().st_size <= MAX_MANIFEST_BYTES:
                raw = path.read_bytes()
        except OSError:
            raw = None
        fetched = raw is None
        if raw is None:
            if fetch is None:
                raise NotFoundError(
                    f"{repo}@{commit[:12]}: manifest.json is not in the cache "
                    f"({self.root}) and the store is offline"
                )
            raw = fetch()
        manifest = parse_manifest(raw, f"{repo}@{commit[:12]}: manifest.json")
        if fetched:
            try:
                ensure_dir(path.parent)
                atomic_write_bytes(path, raw)
            except (OSError, UserError):
                pass
        return manifest

    # -------------------------------------------------------------------------------- blobs
    def blob(self, sha256: str, size: int, fetch_into: Callable[[Path], None] | None, label: str) -> Path:
        """A file whose content has ``sha256`` and ``size`` (re-hashed on every call): cached, or
        downloaded into a temp file by ``fetch_into(part)`` and kept only if it matches."""
        if not is_sha256_hex(sha256):
            raise IntegrityError(f"{label}: {sha256[:70]!r} is not a sha256")
        path = self.root / "blobs" / sha256
        if path.is_file():
            got, n = sha256_file(path)
            if got == sha256 and n == size:
                return path
            self.evict(path)  # damaged in the cache: fetch again
        if fetch_into is None:
            raise NotFoundError(f"{label} is not in the cache ({self.root}) and the store is offline")
        tmp = ensure_dir(self.root / "tmp") / tmp_name(suffix=".download")
        try:
            fetch_into(tmp)
            got, n = sha256_file(tmp)
            if got != sha256 or n != size:
                raise IntegrityError(
                    f"{label} hashes to sha256:{got[:12]}… ({n} bytes), the manifest says "
                    f"sha256:{sha256[:12]}… ({size} bytes): the remote copy was modified or "
                    "corrupted; nothing was written"
                )
            os.chmod(tmp, 0o444)
            ensure_dir(path.parent)
            os.replace(tmp, path)
        finally:
            remove_tree(tmp)
            remove_tree(tmp.with_name(tmp.name + ".validator"))
        return path

    # ---------------------------------------------------------------------------- snapshots
    def snapshot(self, manifest: Mapping[str, Any], files: Mapping[str, Path]) -> Path:
        """An artifact directory for ``manifest`` whose files are ``files`` (verified blobs)."""
        digest = manifest_digest(manifest)
        target = self.root / "snapshots" / digest[7:]
        if target.is_dir():
            return target
        with staged_dir(target) as tmp:
            for fname, src in files.items():
                try:
                    os.link(src, tmp / fname)
                except OSError:
                    shutil.copyfile(src, tmp / fname)
            (tmp / MANIFEST_FILE).write_bytes(manifest_bytes(manifest))
        return target
