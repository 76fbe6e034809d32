"""The embedded local store: content-addressed blobs, append-only versions, tags, annotations.

Root: the ``root`` argument, else ``$DCREG_HOME``, else ``~/.cache/dcreg``. Layout::

    blobs/sha256/<2 hex>/<64 hex>   content-addressed, read-only (0444) files. Every file of an
                                    artifact is a blob, and so is its manifest, stored as the
                                    canonical manifest bytes: the version digest is the sha256 of
                                    that blob (= artifact.manifest_digest).
    repos/<ns>/<name>/versions/v<N> one tiny immutable JSON file {"digest", "created_at"} per
                                    version. A version exists iff this file exists; it is written
                                    last, by atomic rename, so a killed push never shows a partial
                                    version.
    repos/<ns>/<name>/removed/v<N>  the version file of a removed version (``rm``), kept so that
                                    version numbers are never reused.
    repos/<ns>/<name>/tags.log      append-only JSON lines {"ts","action":"set"|"unset","tag",
                                    "version","digest"}; the current tags are its replay.
                                    ``latest`` is automatic (the highest live version): shown as
                                    a tag, never stored.
    repos/<ns>/<name>/annotations/v<N>/<id>.json
                                    annotations (e.g. evaluation results, kind "eval") attached to
                                    a version; they never change its digest. Ids start with a UTC
                                    timestamp, so name order is time order.
    index.sqlite                    derived index of live versions for metadata queries; checked
                                    against the version files before every query and repaired
                                    (or rebuilt when missing/corrupt).
    snapshots/<digest hex>/         a version materialized as a directory (hard links to the blobs,
                                    copies where links fail) so that ``open`` returns an Artifact.
                                    Read-only: never write into it.
    tmp/                            temp files (named <pid>-..., so gc can tell dead writers' ones).
    lock                            a file lock (flock) held around every mutation of versions,
                                    tags and the index (push's allocation+rename+tags+index, tag,
                                    untag, rm, gc). Blob writes happen outside it: they are
                                    idempotent temp+fsync+rename writes, re-checked under the lock.

Every write is atomic: temp file on the same filesystem -> write -> fsync -> os.replace -> fsync
of the directory. A process killed at any point leaves at worst unreferenced blobs and temp
files, which ``gc`` removes, and an index that the next query repairs.

Test hook: with ``DCREG_TEST_PAUSE_AT=<stage>`` in the environment, ``push`` prints
``DCREG_TEST_PAUSED <stage>`` on stderr and sleeps (``DCREG_TEST_PAUSE_SECONDS``, default 3600)
when it reaches that stage, so tests can SIGKILL it there. Stages: ``blob-write`` (a blob's temp
file is half written), ``blobs-written`` (all blobs stored, lock not taken yet),
``version-written`` (version file renamed into place, lock held, tags and index not updated).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import secrets
import shutil
import sqlite3
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from filelock import FileLock, Timeout

from ..artifact import (MANIFEST_FILE, Artifact, check_manifest_shape, manifest_digest,
                        open_artifact, read_manifest, verify_files)
from ..canonical import canonical_json, sha256_bytes, sha256_file
from ..card import render_card
from ..errors import (AmbiguousReferenceError, IntegrityError, InvalidNameError,
                      InvalidReferenceError, NotFoundError, TagProtectedError, UserError)
from ..metadata import utc_now
from ..refs import _DIGEST_RE, _VERSION_RE, LATEST, Ref, parse_ref, validate_name, validate_tag
from ..fsio import (append_line, atomic_write_bytes, copy_hashing, ensure_dir, fsync_dir,
                     remove_tree, tmp_name, tmp_owner_alive)
from .base import EVAL_KIND, GcReport, PushResult, Store, VerifyReport, VersionCheck, VersionInfo
from .index import Index, IndexRow
from .query import parse_terms

__all__ = ["LocalStore", "VersionInfo", "PushResult", "GcReport", "default_root", "EVAL_KIND",
           "TEST_PAUSE_ENV", "PAUSE_STAGES"]

TEST_PAUSE_ENV = "DCREG_TEST_PAUSE_AT"
PAUSE_STAGES = ("blob-write", "blobs-written", "version-written")
#: Transfers at least this large get a byte progress bar (when progress is on).
PROGRESS_MIN_BYTES = 4 << 20
INDEX_FILE = "index.sqlite"

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_VFILE = re.compile(r"^v([1-9][0-9]{0,8})$")
_KIND = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def default_root() -> Path:
    """``$DCREG_HOME`` if set, else ``~/.cache/dcreg``."""
    env = os.environ.get("DCREG_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "dcreg"


def _test_pause(stage: str) -> None:
    if os.environ.get(TEST_PAUSE_ENV) == stage:
        sys.stderr.write(f"DCREG_TEST_PAUSED {stage}\n")
        sys.stderr.flush()
        time.sleep(float(os.environ.get("DCREG_TEST_PAUSE_SECONDS", "3600")))


class LocalStore(Store):
    """The embedded versioned store at ``root`` (see the module docstring for the layout)."""

    def __init__(self, root: str | Path | None = None, *, lock_timeout: float = 300.0):
        self.root = Path(root).expanduser() if root is not None else default_root()
        self.lock_timeout = lock_timeout
        self._lock: FileLock | None = None

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    # ---------------------------------------------------------------------------------- paths
    @property
    def _tmp(self) -> Path:
        return self.root / "tmp"

    def _blob_path(self, hexdigest: str) -> Path:
        if not _HEX64.match(hexdigest):
            raise IntegrityError(f"not a sha256 digest: {hexdigest[:80]!r}")
        return self.root / "blobs" / "sha256" / hexdigest[:2] / hexdigest

    def _repo(self, name: str) -> Path:
        ns, nm = validate_name(name).split("/")
        return self.root / "repos" / ns / nm

    def _snapshot_path(self, digest: str) -> Path:
        return self.root / "snapshots" / _hex(digest)

    def _ensure_layout(self) -> None:
        for sub in ("blobs/sha256", "repos", "tmp", "snapshots"):
            ensure_dir(self.root / sub)

    @contextmanager
    def _locked(self, timeout: float | None = None) -> Iterator[None]:
        self._ensure_layout()
        if self._lock is None:
            self._lock = FileLock(str(self.root / "lock"))
        try:
            self._lock.acquire(timeout=self.lock_timeout if timeout is None else timeout)
        except Timeout:
            raise UserError(f"the store at {self.root} is locked by another dcreg process "
                            f"(waited {timeout or self.lock_timeout:.0f}s on {self.root / 'lock'})"
                            ) from None
        try:
            yield
        finally:
            self._lock.release()

    # ------------------------------------------------------------------------- version files
    def _names(self) -> list[str]:
        """Every name with a repo directory (live versions or not), sorted."""
        repos = self.root / "repos"
        out = []
        if not repos.is_dir():
            return out
        for ns in sorted(os.listdir(repos)):
            nsdir = repos / ns
            if not nsdir.is_dir():
                continue
            for nm in sorted(os.listdir(nsdir)):
                name = f"{ns}/{nm}"
                try:
                    validate_name(name)
                except InvalidNameError:
                    continue
                out.append(name)
        return out

    def _version_numbers(self, name: str, sub: str = "versions") -> list[int]:
        d = self._repo(name) / sub
        try:
            entries = os.listdir(d)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(int(m.group(1)) for e in entries if (m := _VFILE.match(e)))

    def _read_version_file(self, name: str, version: int, sub: str = "versions"
                           ) -> tuple[str, str | None]:
        path = self._repo(name) / sub / f"v{version}"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            digest = data["digest"]
            _hex(digest)
            return digest, data.get("created_at")
        except FileNotFoundError:
            raise NotFoundError(f"{name}@v{version} does not exist") from None
        except (ValueError, KeyError, TypeError, UserError):
            raise IntegrityError(f"{name}@v{version}: version file {path} is damaged") from None

    def _live(self, name: str) -> dict[int, tuple[str, str | None]]:
        """Live versions of ``name``: version -> (digest, created_at) (damaged files skipped)."""
        out = {}
        for v in self._version_numbers(name):
            try:
                out[v] = self._read_version_file(name, v)
            except UserError:
                continue  # tampered by hand: verify_all reports it
        return out

    def _scan(self) -> set[tuple[str, int]]:
        """Every live (name, version) in the store, from the version files."""
        return {(n, v) for n in self._names() for v in self._version_numbers(n)}

    def _write_version_file(self, name: str, version: int, digest: str, created_at: str) -> None:
        vdir = ensure_dir(self._repo(name) / "versions")
        target = vdir / f"v{version}"
        if target.exists() or (self._repo(name) / "removed" / f"v{version}").exists():
            raise RuntimeError(f"{name}@v{version} already allocated")  # a bug: we hold the lock
        data = json.dumps({"digest": digest, "created_at": created_at}, sort_keys=True) + "\n"
        atomic_write_bytes(target, data.encode(), tmp_dir=self._tmp, mode=0o444)

    # --------------------------------------------------------------------------------- blobs
    def _read_manifest(self, digest: str, ref: str = "") -> dict:
        """The manifest stored as blob ``digest``, checked against its hash."""
        path = self._blob_path(_hex(digest))
        where = f"{ref}: " if ref else ""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise IntegrityError(f"{where}manifest blob {digest[:19]}… is missing from the store "
                                 f"(run `dcreg verify --all`)") from None
        if sha256_bytes(data) != _hex(digest):
            raise IntegrityError(f"{where}manifest blob {digest[:19]}… was modified or corrupted "
                                 "(its sha256 no longer matches the version digest)")
        manifest = json.loads(data)
        check_manifest_shape(manifest)
        for fname, entry in manifest["files"].items():
            if not _HEX64.match(entry["sha256"]):
                raise IntegrityError(f"{where}manifest lists {fname} with a malformed sha256")
        return manifest

    def _blob_matches(self, entry: Mapping[str, Any]) -> bool:
        path = self._blob_path(entry["sha256"])
        try:
            if path.stat().st_size != entry["size"]:
                return False
        except FileNotFoundError:
            return False
        return sha256_file(path)[0] == entry["sha256"]

    def _put_blob_bytes(self, data: bytes) -> str:
        hexd = sha256_bytes(data)
        path = self._blob_path(hexd)
        if not (path.is_file() and sha256_file(path)[0] == hexd):
            ensure_dir(path.parent)
            atomic_write_bytes(path, data, tmp_dir=self._tmp, mode=0o444)
        return hexd

    def _put_blob_file(self, src: Path, fname: str, entry: Mapping[str, Any], bar: Any) -> None:
        path = self._blob_path(entry["sha256"])
        tmp = self._tmp / tmp_name(suffix=".blob")
        try:
            with open(src, "rb") as fin, open(tmp, "xb") as fout:
                got, size = copy_hashing(
                    fin, fout, on_chunk=bar.update if bar is not None else None,
                    after_first_chunk=lambda: _test_pause("blob-write"))
                fout.flush()
                os.fsync(fout.fileno())
            if got != entry["sha256"] or size != entry["size"]:
                raise IntegrityError(
                    f"{fname}: changed while being pushed (sha256 {got[:12]}… size {size}, the "
                    f"manifest says {entry['sha256'][:12]}… size {entry['size']}); nothing stored")
            os.chmod(tmp, 0o444)
            ensure_dir(path.parent)
            os.replace(tmp, path)
        except BaseException:
            remove_tree(tmp)
            raise
        fsync_dir(path.parent)

    def _store_blobs(self, src_dir: Path, manifest: Mapping[str, Any], *, check_hash: bool,
                     progress: bool = False) -> None:
        """Store every file of ``manifest`` (from ``src_dir``) and the manifest itself as blobs."""
        self._put_blob_bytes(canonical_json(manifest))
        todo = []
        for fname, entry in sorted(manifest["files"].items()):
            if check_hash:
                ok = self._blob_matches(entry)
            else:
                p = self._blob_path(entry["sha256"])
                ok = p.is_file() and p.stat().st_size == entry["size"]
            if not ok:
                todo.append((fname, entry))
        bar = _progress_bar(sum(e["size"] for _, e in todo), progress, "push")
        try:
            for fname, entry in todo:
                self._put_blob_file(src_dir / fname, fname, entry, bar)
        finally:
            if bar is not None:
                bar.close()

    # ----------------------------------------------------------------------------------- tags
    def _log_path(self, name: str) -> Path:
        return self._repo(name) / "tags.log"

    def tag_log(self, name: str) -> list[dict]:
        """Every entry of ``name``'s append-only tag log, oldest first."""
        try:
            text = self._log_path(name).read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a crash mid-append
            if isinstance(entry, dict) and entry.get("action") in ("set", "unset"):
                out.append(entry)
        return out

    def _tag_map(self, name: str, live: Sequence[int]) -> dict[str, int]:
        tags: dict[str, int] = {}
        for e in self.tag_log(name):
            if e["action"] == "set":
                tags[e["tag"]] = e["version"]
            else:
                tags.pop(e["tag"], None)
        live_set = set(live)
        tags = {t: v for t, v in tags.items() if v in live_set}
        if live_set:
            tags[LATEST] = max(live_set)
        return dict(sorted(tags.items()))

    def tags(self, name: str) -> dict[str, int]:
        """Current tags of ``name`` -> version number, ``latest`` included (NotFoundError if no versions)."""
        validate_name(name)
        live = self._version_numbers(name)
        if not live:
            raise NotFoundError(self._no_such_name(name))
        return self._tag_map(name, live)

    def _append_tag(self, name: str, action: str, tag: str, version: int, digest: str) -> None:
        entry = {"ts": _now_precise(), "action": action, "tag": tag, "version": version,
                 "digest": digest}
        append_line(self._log_path(name), json.dumps(entry, sort_keys=True))

    @staticmethod
    def _user_tag(tag: str) -> str:
        validate_tag(tag)
        if tag == LATEST:
            raise UserError("'latest' is automatic (the highest version); it cannot be set or "
                            "removed by hand")
        return tag

    def tag(self, ref: str | Ref | VersionInfo, tag: str) -> VersionInfo:
        """Point ``tag`` at the version ``ref`` names (moving it if it pointed elsewhere)."""
        self._user_tag(tag)
        self._resolve(ref, strict=False)  # fail before taking the lock (which creates the store)
        with self._locked():
            info = self._resolve(ref, strict=False)
            if self._tag_map(info.name, self._version_numbers(info.name)).get(tag) != info.version:
                self._append_tag(info.name, "set", tag, info.version, info.digest)
            return self._resolve(info, strict=False)

    def untag(self, name: str, tag: str) -> int:
        """Remove ``tag`` from ``name``; return the version it pointed at."""
        validate_name(name)
        self._user_tag(tag)
        if not self._version_numbers(name):
            raise NotFoundError(self._no_such_name(name))
        with self._locked():
            live = self._version_numbers(name)
            current = self._tag_map(name, live)
            if tag not in current:
                have = ", ".join(f"{t}->v{v}" for t, v in current.items() if t != LATEST)
                raise NotFoundError(f"{name} has no tag {tag!r} (tags: {have or 'none'})")
            version = current[tag]
            digest = self._read_version_file(name, version)[0]
            self._append_tag(name, "unset", tag, version, digest)
            return version

    # ------------------------------------------------------------------------------ resolving
    def _parse(self, ref: str | Ref | VersionInfo) -> Ref:
        if isinstance(ref, VersionInfo):
            return Ref("name", ref.name, "version", ref.version)
        if isinstance(ref, Ref):
            r = ref
        else:
            r = parse_ref(ref)
            if r.kind == "path":  # a directory that happens to look like a name: a name here
                r = _name_ref(ref) or r
        if r.kind == "hub":
            raise UserError(f"{r}: the Hugging Face Hub store is not available in this version; "
                            "use a local store name (ns/name)")
        if r.kind != "name":
            raise InvalidReferenceError(f"{r} is a directory, not a store reference "
                                        "(use ns/name[@v3|@tag|@sha256:..])")
        return r

    def resolve(self, ref: str | Ref | VersionInfo) -> VersionInfo:
        """The version ``ref`` names (``ns/name``, ``@vN``, ``@tag``, ``@latest``, ``@sha256:<prefix>``)."""
        return self._resolve(ref, strict=True)

    def _resolve(self, ref: str | Ref | VersionInfo, *, strict: bool) -> VersionInfo:
        r = self._parse(ref)
        name = r.name
        assert name is not None
        live = self._live(name)
        if not live:
            raise NotFoundError(self._no_such_name(name))
        tags = self._tag_map(name, list(live))
        if r.selector == "latest":
            version = max(live)
        elif r.selector == "version":
            version = int(r.value)  # type: ignore[arg-type]
            if version not in live:
                removed = version in self._version_numbers(name, "removed")
                raise NotFoundError(
                    f"{name} has no version v{version}" + (" (it was removed)" if removed else "")
                    + f"; live versions: {_vlist(live)}")
        elif r.selector == "tag":
            if r.value not in tags:
                have = ", ".join(f"{t}->v{v}" for t, v in tags.items())
                raise NotFoundError(f"{name} has no tag {r.value!r} (tags: {have})")
            version = tags[str(r.value)]
        else:
            prefix = str(r.value)
            hits = sorted(v for v, (d, _) in live.items() if _hex(d).startswith(prefix))
            if not hits:
                raise NotFoundError(f"no version of {name} has a digest starting with "
                                    f"sha256:{prefix} (live versions: {_vlist(live)})")
            if len(hits) > 1:
                raise AmbiguousReferenceError(
                    f"sha256:{prefix} matches {len(hits)} versions of {name} "
                    f"({', '.join(f'v{v}={live[v][0][7:19]}' for v in hits)}); give more hex digits")
            version = hits[0]
        return self._info(name, version, live[version], tags, strict=strict)

    def _info(self, name: str, version: int, vfile: tuple[str, str | None],
              tags: Mapping[str, int], *, strict: bool) -> VersionInfo:
        digest, created_at = vfile
        try:
            metadata = self._read_manifest(digest, f"{name}@v{version}")["metadata"]
        except UserError:
            if strict:
                raise
            metadata = {}
        return VersionInfo(name, version, digest, tuple(t for t, v in tags.items() if v == version),
                           created_at, metadata)

    def manifest(self, ref: str | Ref | VersionInfo) -> dict:
        """The manifest of the version ``ref`` names (format, metadata, files with sha256/size)."""
        info = self.resolve(ref)
        return self._read_manifest(info.digest, info.ref)

    def _no_such_name(self, name: str) -> str:
        names = [n for n in self._names() if self._version_numbers(n)]
        msg = f"no artifact named {name} in the store at {self.root}"
        if not names:
            return msg + " (the store is empty; `dcreg push DIR --name NS/NAME` adds one)"
        if len(names) <= 8:
            return msg + f" (names: {', '.join(names)})"
        return msg + f" ({len(names)} names; `dcreg list` shows them)"

    # ----------------------------------------------------------------------------------- push
    def push(self, path: str | Path, name: str, tags: Sequence[str] = (), *,
             progress: bool = False) -> PushResult:
        """Store the artifact directory ``path`` as the next version of ``name``.

        Identical content already live under ``name`` is not stored again: its version is
        returned with ``created=False`` (the tags are still applied)."""
        validate_name(name)
        tags = tuple(dict.fromkeys(self._user_tag(t) for t in tags))
        art = open_artifact(path, verify=True)  # full validation before the store is touched
        manifest = art.manifest
        for fname, entry in manifest["files"].items():
            if not _HEX64.match(entry["sha256"]):
                raise IntegrityError(f"manifest lists {fname} with a malformed sha256")
        digest = manifest_digest(manifest)
        self._ensure_layout()
        self._store_blobs(art.path, manifest, check_hash=True, progress=progress)
        _test_pause("blobs-written")
        with self._locked():
            # gc may have collected blobs written before we took the lock: put them back.
            self._store_blobs(art.path, manifest, check_hash=False)
            live = self._live(name)
            same = sorted(v for v, (d, _) in live.items() if d == digest)
            if same:
                version, created, created_at = same[0], False, live[same[0]][1]
            else:
                allocated = self._version_numbers(name) + self._version_numbers(name, "removed")
                version = max(allocated, default=0) + 1
                created, created_at = True, utc_now()
                self._write_version_file(name, version, digest, created_at)
                _test_pause("version-written")
            current = self._tag_map(name, [*live, version])
            for t in tags:
                if current.get(t) != version:
                    self._append_tag(name, "set", t, version, digest)
            self._index_put([IndexRow(name, version, digest, created_at, manifest["metadata"])])
        return PushResult(name, version, digest, created, tags)

    # ----------------------------------------------------------------------------- open/pull
    def open(self, ref: str | Ref | VersionInfo, verify: bool = True) -> Artifact:
        """The version ``ref`` names as an Artifact (read-only snapshot dir; ``verify`` re-hashes)."""
        return self._open_info(self.resolve(ref), verify)

    def _open_info(self, info: VersionInfo, verify: bool) -> Artifact:
        manifest = self._read_manifest(info.digest, info.ref)
        for attempt in (0, 1):
            snap = self._materialize(info, manifest)
            try:
                return open_artifact(snap, verify=verify)
            except IntegrityError as exc:
                if attempt:
                    raise IntegrityError(f"{info.ref}: {exc}") from None
                remove_tree(snap)  # a damaged snapshot (copies): rebuild it once from the blobs
        raise AssertionError("unreachable")

    def _materialize(self, info: VersionInfo, manifest: Mapping[str, Any]) -> Path:
        snap = self._snapshot_path(info.digest)
        if snap.is_dir():
            return snap
        ensure_dir(snap.parent)
        ensure_dir(self._tmp)
        tmp = self._tmp / tmp_name(suffix=".snap")
        tmp.mkdir()
        try:
            for fname, entry in manifest["files"].items():
                blob = self._blob_path(entry["sha256"])
                if not blob.is_file():
                    raise IntegrityError(f"{info.ref}: {fname}: blob sha256:{entry['sha256'][:12]}… "
                                         "is missing from the store")
                try:
                    os.link(blob, tmp / fname)
                except OSError:
                    shutil.copyfile(blob, tmp / fname)
                    os.chmod(tmp / fname, 0o444)
            (tmp / MANIFEST_FILE).write_bytes(_pretty_manifest(manifest))
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

    def pull(self, ref: str | Ref | VersionInfo, out_dir: str | Path | None = None, *,
             progress: bool = False) -> Path:
        """Copy the version ``ref`` names to ``out_dir`` (default ``./<name>-v<N>``), verified first."""
        info = self.resolve(ref)
        manifest = self._read_manifest(info.digest, info.ref)
        out = Path(out_dir) if out_dir is not None else Path(f"{info.name.split('/')[1]}-v{info.version}")
        if out.exists() or out.is_symlink():
            if not out.is_dir():
                raise UserError(f"{out} exists and is not a directory; choose another -o")
            if any(out.iterdir()):
                if _holds(out, info.digest):
                    return out
                raise UserError(f"{out} exists and is not empty; choose another -o (or remove it)")
        ensure_dir(out.parent)
        tmp = out.parent / tmp_name(f".{out.name}.dcreg-pull-")
        tmp.mkdir()
        try:
            bar = _progress_bar(sum(e["size"] for e in manifest["files"].values()), progress, "pull")
            try:
                for fname, entry in sorted(manifest["files"].items()):
                    blob = self._blob_path(entry["sha256"])
                    try:
                        fin = open(blob, "rb")
                    except FileNotFoundError:
                        raise IntegrityError(f"{info.ref}: {fname}: blob is missing from the store; "
                                             f"nothing was written to {out}") from None
                    with fin, open(tmp / fname, "xb") as fout:
                        got, size = copy_hashing(fin, fout,
                                                 on_chunk=bar.update if bar is not None else None)
                        fout.flush()
                        os.fsync(fout.fileno())
                    if got != entry["sha256"] or size != entry["size"]:
                        raise IntegrityError(
                            f"{info.ref}: {fname}: the stored blob hashes to sha256:{got[:12]}…, the "
                            f"manifest says sha256:{entry['sha256'][:12]}… (the store copy was "
                            f"modified or corrupted); nothing was written to {out}")
            finally:
                if bar is not None:
                    bar.close()
            (tmp / MANIFEST_FILE).write_bytes(_pretty_manifest(manifest))
            open_artifact(tmp, verify=False)  # full validation (hashes were checked while copying)
            fsync_dir(tmp)
            if out.is_dir():
                os.rmdir(out)  # empty: checked above
            os.rename(tmp, out)
        except BaseException:
            remove_tree(tmp)
            raise
        fsync_dir(out.parent)
        return out

    # ---------------------------------------------------------------------------------- index
    def _index_put(self, rows: list[IndexRow]) -> None:
        """Best-effort index update (under the lock); the next query repairs a failure."""
        try:
            with Index(self.root / INDEX_FILE) as idx:
                if not idx.in_memory:
                    idx.upsert(rows)
        except sqlite3.Error:
            pass

    def _row(self, name: str, version: int) -> IndexRow:
        try:
            digest, created_at = self._read_version_file(name, version)
        except UserError:
            return IndexRow(name, version, "", None, {})
        try:
            md = self._read_manifest(digest)["metadata"]
        except (UserError, ValueError):
            md = {}
        return IndexRow(name, version, digest, created_at, md if isinstance(md, dict) else {})

    def _sync_index(self, idx: Index) -> None:
        files = self._scan()
        have = idx.keys()
        if files == have:
            return
        idx.delete(have - files)
        idx.upsert([self._row(n, v) for n, v in sorted(files - have)])

    def _index(self) -> Index:
        """An index in step with the version files (repaired under the lock if it is not)."""
        idx = None
        if os.access(self.root, os.W_OK):
            try:
                idx = Index(self.root / INDEX_FILE)
            except sqlite3.Error:
                idx = None
        if idx is not None and not idx.in_memory:
            try:
                if self._scan() == idx.keys():
                    return idx
                with self._locked(timeout=min(self.lock_timeout, 10.0)):
                    self._sync_index(idx)
                return idx
            except (UserError, sqlite3.Error, OSError):
                pass  # locked by a long writer, or not writable: answer from the files
            except BaseException:
                idx.close()
                raise
            idx.close()
        elif idx is not None:
            idx.close()
        idx = Index(None)
        self._sync_index(idx)
        return idx

    def rebuild_index(self) -> int:
        """Drop and rebuild ``index.sqlite`` from the version files; return the row count."""
        with self._locked():
            remove_tree(self.root / INDEX_FILE)
            with Index(self.root / INDEX_FILE) as idx:
                self._sync_index(idx)
                return len(idx.keys())

    # ----------------------------------------------------------------------------------- list
    def list(self, name: str | None = None, query: Sequence[str] | str = (),
             all_versions: bool = False) -> list[VersionInfo]:
        """Versions matching ``query`` terms (``ipc<=10``...): the highest matching one per name, or all."""
        if name is not None:
            validate_name(name)
        terms = parse_terms(query)
        if not (self.root / "repos").is_dir():
            return []
        with self._index() as idx:
            rows = idx.query(terms, name)
        if not all_versions:
            best: dict[str, IndexRow] = {}
            for r in rows:
                if r.name not in best or r.version > best[r.name].version:
                    best[r.name] = r
            rows = [best[n] for n in sorted(best)]
        tag_maps = {n: self._tag_map(n, self._version_numbers(n)) for n in {r.name for r in rows}}
        return [VersionInfo(r.name, r.version, r.digest,
                            tuple(t for t, v in tag_maps[r.name].items() if v == r.version),
                            r.created_at, r.metadata) for r in rows]

    # --------------------------------------------------------------------------------- verify
    def verify(self, ref: str | Ref | VersionInfo) -> VersionInfo:
        """Re-hash every blob of the version ``ref`` names and validate it; IntegrityError names the file."""
        info = self.resolve(ref)
        self._verify_blobs(info, self._read_manifest(info.digest, info.ref))
        self._open_info(info, verify=True)
        return info

    def _verify_blobs(self, info: VersionInfo, manifest: Mapping[str, Any]) -> None:
        for fname, entry in sorted(manifest["files"].items()):
            blob = self._blob_path(entry["sha256"])
            try:
                got, size = sha256_file(blob)
            except FileNotFoundError:
                raise IntegrityError(f"{info.ref}: {fname}: blob sha256:{entry['sha256'][:12]}… is "
                                     "missing from the store") from None
            if got != entry["sha256"] or size != entry["size"]:
                raise IntegrityError(
                    f"{info.ref}: {fname}: the stored blob hashes to sha256:{got[:12]}…, the "
                    f"manifest says sha256:{entry['sha256'][:12]}… (the store copy was modified or "
                    "corrupted; push the original artifact again to repair it)")

    def verify_all(self) -> VerifyReport:
        """Verify every live version; failures and store anomalies go into the report."""
        report = VerifyReport()
        for name, version in sorted(self._scan()):
            try:
                self._read_version_file(name, version)
                info = self._resolve(Ref("name", name, "version", version), strict=False)
            except UserError as exc:
                report.checks.append(VersionCheck(VersionInfo(name, version, "", (), None, {}), exc))
                continue
            try:
                self.verify(info)
                report.checks.append(VersionCheck(info, None))
            except UserError as exc:
                report.checks.append(VersionCheck(info, exc))
        return report

    # --------------------------------------------------------------------------------- rm / gc
    def rm(self, ref: str | Ref | VersionInfo, force: bool = False) -> VersionInfo:
        """Remove one version (refused while it carries a user tag unless ``force``); blobs stay until gc."""
        self._resolve(ref, strict=False)  # fail before taking the lock (which creates the store)
        with self._locked():
            info = self._resolve(ref, strict=False)
            user_tags = [t for t in info.tags if t != LATEST]
            if user_tags and not force:
                raise TagProtectedError(
                    f"{info.ref} carries tag(s) {', '.join(user_tags)}; untag it first "
                    f"(dcreg untag {info.name} {user_tags[0]}) or pass --force")
            for t in user_tags:
                self._append_tag(info.name, "unset", t, info.version, info.digest)
            repo = self._repo(info.name)
            ensure_dir(repo / "removed")
            os.replace(repo / "versions" / f"v{info.version}", repo / "removed" / f"v{info.version}")
            fsync_dir(repo / "versions")
            fsync_dir(repo / "removed")
            try:
                with Index(self.root / INDEX_FILE) as idx:
                    idx.delete([(info.name, info.version)])
            except sqlite3.Error:
                pass
            if info.digest and info.digest not in self._live_digests():
                remove_tree(self._snapshot_path(info.digest))
        return VersionInfo(info.name, info.version, info.digest, (), info.created_at, info.metadata)

    def _live_digests(self) -> set[str]:
        out = set()
        for name, version in self._scan():
            try:
                out.add(self._read_version_file(name, version)[0])
            except UserError:
                pass
        return out

    def gc(self, dry_run: bool = True) -> GcReport:
        """Find (and unless ``dry_run`` delete) unreferenced blobs, stale snapshots and dead temp files."""
        report = GcReport([], 0, [], [], dry_run)
        if not self.root.is_dir():
            return report
        with self._locked():
            keep: set[str] = set()
            live_hex: set[str] = set()
            for name, version in sorted(self._scan()):
                digest = self._read_version_file(name, version)[0]
                manifest = self._read_manifest(digest, f"{name}@v{version}")  # refuse if unreadable
                live_hex.add(_hex(digest))
                keep.add(_hex(digest))
                keep.update(e["sha256"] for e in manifest["files"].values())
            blob_root = self.root / "blobs" / "sha256"
            for sub in sorted(os.listdir(blob_root)) if blob_root.is_dir() else []:
                for entry in sorted(os.scandir(blob_root / sub), key=lambda e: e.name):
                    if entry.name in keep:
                        continue
                    report.blobs.append(f"sha256:{entry.name}")
                    report.bytes += entry.stat(follow_symlinks=False).st_size
                    if not dry_run:
                        remove_tree(Path(entry.path))
            snaps = self.root / "snapshots"
            for entry in sorted(os.listdir(snaps)) if snaps.is_dir() else []:
                if entry not in live_hex:
                    report.snapshots.append(f"sha256:{entry}")
                    report.bytes += _private_bytes(snaps / entry)
                    if not dry_run:
                        remove_tree(snaps / entry)
            for entry in sorted(os.listdir(self._tmp)) if self._tmp.is_dir() else []:
                if not tmp_owner_alive(entry):
                    report.tmp.append(entry)
                    report.bytes += _private_bytes(self._tmp / entry)
                    if not dry_run:
                        remove_tree(self._tmp / entry)
        return report

    # ---------------------------------------------------------------------------- annotations
    def annotate(self, ref: str | Ref | VersionInfo, kind: str, record: Mapping[str, Any]) -> str:
        """Attach ``record`` (JSON) of ``kind`` (e.g. "eval") to a version; return its id."""
        if not isinstance(kind, str) or not _KIND.match(kind):
            raise UserError(f"invalid annotation kind {kind!r}: use lowercase [a-z0-9._-]")
        info = self.resolve(ref)
        now = _dt.datetime.now(_dt.timezone.utc)
        ann_id = f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{kind}-{secrets.token_hex(4)}"
        envelope = {"id": ann_id, "kind": kind, "created_at": now.isoformat().replace("+00:00", "Z"),
                    "name": info.name, "version": info.version, "digest": info.digest,
                    "record": dict(record)}
        try:
            data = json.dumps(envelope, indent=2, sort_keys=True, allow_nan=False) + "\n"
        except (TypeError, ValueError) as exc:
            raise UserError(f"annotation record is not plain JSON: {exc}") from None
        adir = ensure_dir(self._repo(info.name) / "annotations" / f"v{info.version}")
        ensure_dir(self._tmp)
        atomic_write_bytes(adir / f"{ann_id}.json", data.encode("utf-8"), tmp_dir=self._tmp,
                           mode=0o444)
        return ann_id

    def annotations(self, ref: str | Ref | VersionInfo, kind: str | None = None) -> list[dict]:
        """Annotations of a version, oldest first.

        Each is ``{id, kind, created_at, name, version, digest, record}``."""
        info = self.resolve(ref)
        adir = self._repo(info.name) / "annotations" / f"v{info.version}"
        out = []
        for fname in sorted(os.listdir(adir)) if adir.is_dir() else []:
            if not fname.endswith(".json") or fname.startswith("."):
                continue
            try:
                ann = json.loads((adir / fname).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(ann, dict) and (kind is None or ann.get("kind") == kind):
                out.append(ann)
        return out

    def card(self, ref: str | Ref | VersionInfo) -> str:
        """The version's card re-rendered with its recorded evaluation results ("eval" annotations)."""
        info = self.resolve(ref)
        results = [a["record"] for a in self.annotations(info, EVAL_KIND)]
        return render_card(info.metadata, results, ref=info.ref)


# ------------------------------------------------------------------------------------- helpers
def _hex(digest: str) -> str:
    if not isinstance(digest, str) or not digest.startswith("sha256:") or not _HEX64.match(digest[7:]):
        raise IntegrityError(f"malformed digest {str(digest)[:80]!r}")
    return digest[7:]


def _vlist(live: Mapping[int, Any]) -> str:
    return ", ".join(f"v{v}" for v in sorted(live)) or "none"


def _now_precise() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _pretty_manifest(manifest: Mapping[str, Any]) -> bytes:
    """manifest.json as build_artifact writes it (so a pulled directory is byte-identical)."""
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _holds(directory: Path, digest: str) -> bool:
    """Whether ``directory`` holds the verified artifact with ``digest``."""
    try:
        manifest = read_manifest(directory)
        if manifest_digest(manifest) != digest:
            return False
        verify_files(directory, manifest)
        return True
    except (UserError, OSError, ValueError):
        return False


def _private_bytes(path: Path) -> int:
    """Bytes freed by deleting ``path`` (files with other hard links free nothing)."""
    total = 0
    paths = [path] if not path.is_dir() else [p for p in path.rglob("*")]
    for p in paths:
        try:
            st = p.lstat()
        except FileNotFoundError:
            continue
        if not p.is_dir() and st.st_nlink <= 1:
            total += st.st_size
    return total


def _name_ref(text: str) -> Ref | None:
    """``text`` read as a name reference, ignoring any same-named directory (None if not one)."""
    if text.startswith(("/", ".", "~")):
        return None
    name, at, sel = text.partition("@")
    try:
        validate_name(name)
    except InvalidNameError:
        return None
    if not at or sel == LATEST:
        return Ref("name", name)
    if m := _VERSION_RE.match(sel):
        return Ref("name", name, "version", int(m.group(1)))
    if m := _DIGEST_RE.match(sel):
        return Ref("name", name, "digest", m.group(1))
    try:
        validate_tag(sel)
    except InvalidNameError:
        return None
    return Ref("name", name, "tag", sel)


def _progress_bar(total: int, enabled: bool, desc: str) -> Any:
    if not enabled or total < PROGRESS_MIN_BYTES:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
                file=sys.stderr, leave=False)
