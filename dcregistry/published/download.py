"""Downloads for ``dcreg fetch``: HTTPS with resume, Google Drive (gdown), Hugging Face Hub.

HTTPS downloads go to ``FILE.part`` and continue it with an HTTP ``Range`` request after an
interruption (in the same call, up to ``retries`` times, or in a later call); the file gets its
final name only when complete. Google Drive files go through ``gdown`` (its own resume), Hub
files through ``huggingface_hub`` (its cache and resume). Nothing here trusts a header: sizes are
checked against the catalog and a hard cap while bytes arrive.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

from .. import __version__
from ..canonical import sha256_file
from ..errors import IntegrityError, UserError
from .catalog import MAX_FILE_BYTES, check_url

CHUNK = 1 << 20
_CONTENT_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE_RE = re.compile(r"bytes \*/(\d+)")
_GDRIVE_ID_RE = re.compile(r"(?:/d/|[?&]id=)([A-Za-z0-9_-]{10,})")


class DownloadError(UserError):
    """A download failed (network, HTTP status, size) in a way the user can act on."""


class ChecksumMismatchError(IntegrityError):
    """A downloaded file does not have the sha256 the catalog records."""


def _bar(total: int | None, initial: int, enabled: bool, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024,
                desc=desc, disable=not enabled, leave=False)


def _content_range(value: str | None) -> tuple[int, int, int | None] | None:
    m = _CONTENT_RANGE_RE.fullmatch((value or "").strip())
    if not m:
        return None
    total = None if m.group(3) == "*" else int(m.group(3))
    return int(m.group(1)), int(m.group(2)), total


def http_download(url: str, dest: Path, *, expected_size: int | None = None,
                  max_bytes: int = MAX_FILE_BYTES, progress: bool = False, retries: int = 4,
                  timeout: float = 60.0, backoff: float = 0.5) -> Path:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming with Range after a drop."""
    check_url(url, "download")
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    limit = min(max_bytes, expected_size) if expected_size else max_bytes
    attempt = 0
    while True:
        have = part.stat().st_size if part.exists() else 0
        if have > limit:
            part.unlink()
            have = 0
        try:
            if _fetch_into(url, part, have, limit, expected_size, progress, timeout, dest.name):
                os.replace(part, dest)
                return dest
        except (http.client.HTTPException, ConnectionError, socket.timeout, TimeoutError,
                urllib.error.URLError) as exc:
            if isinstance(exc, urllib.error.HTTPError):
                raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
            if attempt >= retries:
                got = part.stat().st_size if part.exists() else 0
                raise DownloadError(
                    f"{url}: download interrupted after {attempt + 1} attempt(s) "
                    f"({type(exc).__name__}: {exc}); {got} bytes are kept in {part} and the "
                    "next fetch resumes from there") from None
        attempt += 1
        time.sleep(min(backoff * 2 ** (attempt - 1), 8.0))


def _fetch_into(url: str, part: Path, have: int, limit: int, expected_size: int | None,
                progress: bool, timeout: float, label: str) -> bool:
    """One request; True when ``part`` holds the complete file, False to retry."""
    headers = {"User-Agent": f"dcreg/{__version__}", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                      timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left after `have`: complete, or the file changed
            m = _UNSATISFIED_RANGE_RE.fullmatch((exc.headers.get("Content-Range") or "").strip())
            exc.close()
            if m is None or int(m.group(1)) != have:
                part.unlink()  # the remote file is shorter than what we hold: start over
                return False
            return True
        raise
    with resp:
        if resp.status == 206:
            rng = _content_range(resp.headers.get("Content-Range"))
            if rng is None or rng[0] != have:
                part.unlink(missing_ok=True)  # the server ignored our offset: start over
                return False
            total = rng[2]
            mode = "ab"
        elif resp.status == 200:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            have, mode = 0, "wb"
        else:
            raise DownloadError(f"{url}: unexpected HTTP status {resp.status}")
        if total is not None and total > limit:
            raise DownloadError(f"{url}: the server announces {total} bytes, more than the "
                                f"{limit} expected; refusing it")
        if expected_size and total is not None and total != expected_size:
            raise DownloadError(f"{url}: the server announces {total} bytes but the catalog "
                                f"says {expected_size}")
        with open(part, mode) as f, _bar(total, have, progress, label) as bar:
            while True:
                block = resp.read(CHUNK)
                if not block:
                    break
                have += len(block)
                if have > limit:
                    raise DownloadError(f"{url}: more than {limit} bytes; refusing it")
                f.write(block)
                bar.update(len(block))
            f.flush()
            os.fsync(f.fileno())
        if total is not None and have < total:
            raise http.client.IncompleteRead(b"", total - have)
        if total is not None and have != total:
            raise DownloadError(f"{url}: received {have} bytes, expected {total}")
        return True


# ------------------------------------------------------------------------------ Google Drive
def gdrive_file_id(url: str) -> str:
    """The file id in a Google Drive share link."""
    m = _GDRIVE_ID_RE.search(url)
    if not m:
        raise DownloadError(f"{url}: not a Google Drive file link (no /d/ID or id=ID)")
    return m.group(1)


def gdrive_list_folder(url: str) -> list[tuple[str, str]]:
    """``[(path inside the folder, file id)]`` of a shared Google Drive folder (via gdown)."""
    gdown = _gdown()
    try:
        listing = gdown.download_folder(url=url, skip_download=True, quiet=True)
    except Exception as exc:  # gdown raises its own types for network and parsing failures
        raise DownloadError(f"{url}: cannot list the Google Drive folder ({type(exc).__name__}: "
                            f"{exc})") from None
    return [(str(item.path).replace(os.sep, "/"), str(item.id)) for item in listing or []]


def select_in_folder(listing: list[tuple[str, str]], wanted: str, folder: str) -> str:
    """The id of ``wanted`` in a folder listing: exact path, else a unique file-name match."""
    for path, fid in listing:
        if path == wanted:
            return fid
    if "/" not in wanted:
        hits = [(p, fid) for p, fid in listing if p.rsplit("/", 1)[-1] == wanted]
        if len(hits) == 1:
            return hits[0][1]
        if len(hits) > 1:
            raise DownloadError(f"{folder}: {len(hits)} files are named {wanted} "
                                f"({', '.join(p for p, _ in hits[:5])}); pass --path DIR")
    near = [p for p, _ in listing if p.rsplit("/", 1)[-1] == wanted.rsplit("/", 1)[-1]][:5]
    raise DownloadError(f"{folder}: no file {wanted} in the shared folder"
                        + (f" (files with that name: {', '.join(near)})" if near else
                           f" ({len(listing)} files listed)"))


def gdrive_download(file_id: str, dest: Path, *, progress: bool = False) -> Path:
    """Download one Google Drive file by id to ``dest`` (gdown resumes partial files)."""
    gdown = _gdown()
    part = dest.with_name(dest.name + ".part")
    try:
        got = gdown.download(id=file_id, output=str(part), quiet=not progress, resume=True)
    except Exception as exc:
        raise DownloadError(f"Google Drive file {file_id}: download failed "
                            f"({type(exc).__name__}: {exc}); run fetch again to resume") from None
    if not got or not part.is_file():
        raise DownloadError(f"Google Drive file {file_id}: download failed (quota or access); "
                            "run fetch again later")
    os.replace(part, dest)
    return dest


def _gdown() -> Any:
    try:
        import gdown
    except ImportError:
        raise DownloadError("this set is on Google Drive: install gdown (pip install gdown)") \
            from None
    return gdown


# ------------------------------------------------------------------------------- Hugging Face
def hf_download(repo: str, path: str, dest: Path, *, revision: str | None = None,
                progress: bool = False) -> Path:
    """Download ``path`` of the Hub dataset repo ``repo`` (through the Hub cache) to ``dest``."""
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.utils import disable_progress_bars, enable_progress_bars
    except ImportError:  # pragma: no cover - a core dependency
        raise DownloadError("huggingface_hub is not installed") from None
    (enable_progress_bars if progress else disable_progress_bars)()
    try:
        cached = hf_hub_download(repo_id=repo, filename=path, repo_type="dataset",
                                 revision=revision)
    except Exception as exc:  # the hub client raises many types (offline, 404, auth)
        raise DownloadError(f"hf://datasets/{repo}/{path}: download failed "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
    part = dest.with_name(dest.name + ".part")
    shutil.copyfile(cached, part)
    os.replace(part, dest)
    return dest


def check_sha256(path: Path, expected: str | None, label: str,
                 on_mismatch: Callable[[Path], None] | None = None) -> str:
    """sha256 of ``path``; ChecksumMismatchError (after ``on_mismatch``) when it differs."""
    got = sha256_file(path)[0]
    if expected and got != expected:
        if on_mismatch is not None:
            on_mismatch(path)
        raise ChecksumMismatchError(
            f"{label}: sha256 {got} does not match the catalog's {expected}; the download was "
            "deleted and nothing was imported (the file changed upstream or was tampered with)")
    return got
