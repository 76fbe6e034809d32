"""The catalog of published condensed sets (``catalog.toml``, shipped with the package).

``load_catalog()`` reads the packaged catalog, or the file named by ``$DCREG_PUBLISHED_CATALOG``
(or the ``path`` argument), and checks every entry: names, formats, source kinds, file paths,
URLs and sha256 values. A malformed catalog is a :class:`CatalogError` naming entry and field.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any, Literal, overload
from urllib.parse import urlsplit

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import NotFoundError, UserError
from ..refs import is_sha256_hex

CATALOG_ENV = "DCREG_PUBLISHED_CATALOG"
#: Import formats of ``dcreg import`` plus the layouts only ``fetch`` converts.
FETCH_FORMATS = ("dc-pt", "mtt", "kip-npz", "npz")
SOURCE_KINDS = ("https", "gdrive-folder", "gdrive-file", "hf")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
#: Largest file a catalog entry may announce (published sets are at most a few hundred MB).
MAX_FILE_BYTES = 16 << 30

_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
_WORD_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_HF_REPO_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}")


class CatalogError(UserError):
    """The published-sets catalog is malformed."""


@dataclass(frozen=True)
class PublishedFile:
    """One file of a published set: a path inside the source, or a direct URL."""

    path: str | None = None
    url: str | None = None
    sha256: str | None = None
    size: int | None = None

    @property
    def file_name(self) -> str:
        """The local file name (the importers read meaning from it, e.g. ``res_DC_...pt``)."""
        if self.path:
            return PurePosixPath(self.path).name
        return PurePosixPath(urlsplit(self.url or "").path).name


@dataclass(frozen=True)
class PublishedSet:
    """One catalog entry: what the set is, where it is published and how to import it."""

    name: str
    title: str
    method: str
    dataset: str
    ipc: int
    format: str
    license: str
    page: str
    source: dict[str, Any]
    files: tuple[PublishedFile, ...]
    pixel_space: str | None = None
    citation: str | None = None
    notes: str | None = None
    verified: bool = True
    needs_path: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def source_url(self) -> str:
        """Where the set is published (folder, repo or first file URL)."""
        kind = self.source["kind"]
        if kind == "hf":
            return f"https://huggingface.co/datasets/{self.source['repo']}"
        if self.source.get("url"):
            return str(self.source["url"])
        return str(self.files[0].url if self.files else self.page)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (stable keys) for ``dcreg published --json``."""
        from ..citations import method_citation

        return {
            "name": self.name,
            "title": self.title,
            "method": self.method,
            "dataset": self.dataset,
            "ipc": self.ipc,
            "format": self.format,
            "license": self.license,
            "page": self.page,
            "source_kind": self.source["kind"],
            "source_url": self.source_url,
            "files": [{"path": f.path, "url": f.url, "sha256": f.sha256, "size": f.size} for f in self.files],
            "sha256_known": all(f.sha256 for f in self.files),
            "pixel_space": self.pixel_space,
            "citation": self.citation or method_citation(self.method, None),
            "notes": self.notes,
            "verified": self.verified,
            "needs_path": self.needs_path,
        }


def check_url(url: Any, where: str) -> str:
    """``url`` if it is https (or http to a loopback host, for local mirrors and tests)."""
    if not isinstance(url, str) or not url or any(ord(c) < 33 for c in url):
        raise CatalogError(f"{where}: URL must be a non-empty string without spaces")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise CatalogError(f"{where}: {url!r} is not a URL") from None
    if parts.scheme == "https" and host:
        return url
    if parts.scheme == "http" and host in LOOPBACK_HOSTS:
        return url
    raise CatalogError(f"{where}: {url!r} must be https:// (plain http only to 127.0.0.1/localhost)")


def _rel_path(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or "\\" in value or "\x00" in value:
        raise CatalogError(f"{where}: path must be a non-empty POSIX path")
    p = PurePosixPath(value)
    if p.is_absolute() or any(part in ("..", ".", "") for part in value.split("/")):
        raise CatalogError(f"{where}: path {value!r} must be relative, without '.' or '..'")
    return value


@overload
def _str(
    entry: Mapping[str, Any],
    key: str,
    where: str,
    *,
    required: Literal[True] = True,
    pattern: re.Pattern[str] | None = None,
    max_len: int = 20000,
) -> str: ...


@overload
def _str(
    entry: Mapping[str, Any],
    key: str,
    where: str,
    *,
    required: bool,
    pattern: re.Pattern[str] | None = None,
    max_len: int = 20000,
) -> str | None: ...


def _str(
    entry: Mapping[str, Any],
    key: str,
    where: str,
    *,
    required: bool = True,
    pattern: re.Pattern[str] | None = None,
    max_len: int = 20000,
) -> str | None:
    value = entry.get(key)
    if value is None:
        if required:
            raise CatalogError(f"{where}: missing {key!r}")
        return None
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise CatalogError(f"{where}: {key!r} must be a non-empty string")
    if pattern is not None and not pattern.fullmatch(value):
        raise CatalogError(
            f"{where}: {key!r} = {value!r} is not allowed (lowercase letters, digits, '.', '_', '-')"
        )
    return value


def _parse_file(raw: Any, kind: str, where: str) -> PublishedFile:
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: must be a table")
    unknown = set(raw) - {"path", "url", "sha256", "size"}
    if unknown:
        raise CatalogError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    path = raw.get("path")
    url = raw.get("url")
    if kind in ("https", "gdrive-file"):
        if url is None:
            raise CatalogError(f"{where}: a {kind} source needs url on every file")
        url = check_url(url, where)
    elif path is None:
        raise CatalogError(f"{where}: a {kind} source needs path on every file")
    if path is not None:
        path = _rel_path(path, where)
    sha = raw.get("sha256")
    if sha is not None and (not is_sha256_hex(sha)):
        raise CatalogError(f"{where}: sha256 must be 64 lowercase hex digits")
    size = raw.get("size")
    if size is not None and (
        not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_FILE_BYTES
    ):
        raise CatalogError(f"{where}: size must be a positive integer of at most {MAX_FILE_BYTES}")
    f = PublishedFile(path, url, sha, size)
    if not f.file_name:
        raise CatalogError(f"{where}: cannot tell the file name")
    return f


def parse_entry(raw: Any, index: int) -> PublishedSet:
    """Check one ``[[sets]]`` table and return it as a :class:`PublishedSet`."""
    where = f"catalog entry {index}"
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: must be a table")
    name = _str(raw, "name", where, pattern=_NAME_RE)
    where = f"catalog entry {name!r}"
    known = {
        "name",
        "title",
        "method",
        "dataset",
        "ipc",
        "format",
        "license",
        "page",
        "source",
        "files",
        "pixel_space",
        "citation",
        "notes",
        "verified",
        "needs_path",
    }
    unknown = set(raw) - known
    if unknown:
        raise CatalogError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    ipc = raw.get("ipc")
    if not isinstance(ipc, int) or isinstance(ipc, bool) or not 0 < ipc <= 100000:
        raise CatalogError(f"{where}: ipc must be a positive integer")
    fmt = _str(raw, "format", where)
    if fmt not in FETCH_FORMATS:
        raise CatalogError(f"{where}: format {fmt!r} is not one of {', '.join(FETCH_FORMATS)}")
    source = raw.get("source")
    if not isinstance(source, dict) or source.get("kind") not in SOURCE_KINDS:
        raise CatalogError(f"{where}: source.kind must be one of {', '.join(SOURCE_KINDS)}")
    kind = source["kind"]
    if kind == "gdrive-folder":
        check_url(source.get("url"), f"{where}: source.url")
    if kind == "hf":
        repo = source.get("repo")
        if not isinstance(repo, str) or not _HF_REPO_RE.fullmatch(repo) or ".." in repo:
            raise CatalogError(f"{where}: source.repo must be ORG/NAME")
        rev = source.get("revision")
        if rev is not None and (
            not isinstance(rev, str) or not re.fullmatch(r"[\w.\-/]{1,128}", rev) or ".." in rev
        ):
            raise CatalogError(f"{where}: source.revision is malformed")
    files_raw = raw.get("files")
    if not isinstance(files_raw, list) or not files_raw or len(files_raw) > 16:
        raise CatalogError(f"{where}: files must list 1 to 16 files")
    files = tuple(_parse_file(f, kind, f"{where}: files[{i}]") for i, f in enumerate(files_raw))
    names = [f.file_name for f in files]
    if len(set(names)) != len(names):
        raise CatalogError(f"{where}: two files share the name {names}")
    for flag in ("verified", "needs_path"):
        if flag in raw and not isinstance(raw[flag], bool):
            raise CatalogError(f"{where}: {flag} must be true or false")
    return PublishedSet(
        name=name,
        title=_str(raw, "title", where, max_len=300),
        method=_str(raw, "method", where, pattern=_WORD_RE),
        dataset=_str(raw, "dataset", where, pattern=_WORD_RE),
        ipc=ipc,
        format=fmt,
        license=_str(raw, "license", where, max_len=64),
        page=check_url(raw.get("page"), f"{where}: page"),
        source=dict(source),
        files=files,
        pixel_space=_str(raw, "pixel_space", where, required=False),
        citation=_str(raw, "citation", where, required=False),
        notes=_str(raw, "notes", where, required=False),
        verified=raw.get("verified", True),
        needs_path=raw.get("needs_path", False),
    )


def catalog_path(path: str | Path | None = None) -> Path | None:
    """The catalog file in use: ``path``, else $DCREG_PUBLISHED_CATALOG, else None (packaged)."""
    chosen = path if path is not None else os.environ.get(CATALOG_ENV) or None
    return Path(chosen) if chosen else None


def load_catalog(path: str | Path | None = None) -> list[PublishedSet]:
    """Every entry of the catalog (see :func:`catalog_path`), checked, in file order."""
    chosen = catalog_path(path)
    try:
        if chosen is None:
            data = resources.files("dcregistry.published").joinpath("catalog.toml").read_bytes()
            label = "the packaged catalog"
        else:
            if chosen.stat().st_size > 8 << 20:
                raise CatalogError(f"{chosen}: catalog larger than 8 MiB")
            data = chosen.read_bytes()
            label = str(chosen)
    except OSError as exc:
        raise CatalogError(
            f"cannot read the published-sets catalog {chosen}: {exc.strerror or exc}"
        ) from None
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"{label}: not valid TOML ({exc})") from None
    if doc.get("schema") != 1:
        raise CatalogError(f"{label}: expected 'schema = 1'")
    sets = doc.get("sets")
    if not isinstance(sets, list):
        raise CatalogError(f"{label}: no [[sets]] entries")
    entries = [parse_entry(raw, i) for i, raw in enumerate(sets)]
    seen: set[str] = set()
    for e in entries:
        if e.name in seen:
            raise CatalogError(f"{label}: two entries are named {e.name!r}")
        seen.add(e.name)
    return entries


def get_published(name: str, path: str | Path | None = None) -> PublishedSet:
    """The catalog entry called ``name`` (NotFoundError lists close names)."""
    entries = load_catalog(path)
    for e in entries:
        if e.name == name:
            return e
    import difflib

    close = difflib.get_close_matches(name, [e.name for e in entries], n=4)
    hint = f" (did you mean {', '.join(close)}?)" if close else " (`dcreg published` lists them)"
    raise NotFoundError(f"no published set named {name!r} in the catalog{hint}")
