"""Downloads for ``dcreg fetch``: HTTPS with resume, Google Drive (gdown), Hugging Face Hub.

HTTPS and Hub files go through :mod:`dcregistry.transfer` (bounded in bytes, attempts and time;
redirects only to https; a ``FILE.part`` is continued with ``If-Range`` only when its validator
still matches, in the same call or a later one), Google Drive files through ``gdown`` with the
same byte cap and deadline enforced from its progress callback. Nothing here trusts a header:
sizes are checked against the catalog and a hard cap while bytes arrive, and the caller checks
the sha256 before anything is imported.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..canonical import sha256_file
from ..errors import IntegrityError
from ..transfer import DownloadError, deadline_for, download
from .catalog import MAX_FILE_BYTES, check_url

__all__ = [
    "DownloadError",
    "ChecksumMismatchError",
    "http_download",
    "gdrive_file_id",
    "gdrive_list_folder",
    "select_in_folder",
    "gdrive_download",
    "hf_download",
    "check_sha256",
]

_GDRIVE_ID_RE = re.compile(r"(?:/d/|[?&]id=)([A-Za-z0-9_-]{10,})")


class ChecksumMismatchError(IntegrityError):
    """A downloaded file does not have the sha256 the catalog records."""


def http_download(
    url: str,
    dest: Path,
    *,
    expected_size: int | None = None,
    max_bytes: int = MAX_FILE_BYTES,
    progress: bool = False,
    retries: int = 4,
    timeout: float = 60.0,
    backoff: float = 0.5,
    headers: dict[str, str] | None = None,
) -> Path:
    """Download ``url`` to ``dest`` through ``dest.part`` (see the module docstring)."""
    check_url(url, "download")
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    download(
        url,
        part,
        max_bytes=max_bytes,
        expected_size=expected_size,
        headers=headers,
        retries=retries,
        read_timeout=timeout,
        backoff=backoff,
        progress=progress,
        label=dest.name,
    )
    os.replace(part, dest)
    return dest


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
        raise DownloadError(
            f"{url}: cannot list the Google Drive folder ({type(exc).__name__}: {exc})"
        ) from None
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
            raise DownloadError(
                f"{folder}: {len(hits)} files are named {wanted} "
                f"({', '.join(p for p, _ in hits[:5])}); pass --path DIR"
            )
    near = [p for p, _ in listing if p.rsplit("/", 1)[-1] == wanted.rsplit("/", 1)[-1]][:5]
    raise DownloadError(
        f"{folder}: no file {wanted} in the shared folder"
        + (f" (files with that name: {', '.join(near)})" if near else f" ({len(listing)} files listed)")
    )


def gdrive_download(
    file_id: str,
    dest: Path,
    *,
    progress: bool = False,
    max_bytes: int = MAX_FILE_BYTES,
    expected_size: int | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download one Google Drive file by id to ``dest`` (gdown resumes partial files), refusing
    more than ``max_bytes`` (or ``expected_size``) and stopping at the download deadline."""
    gdown = _gdown()
    part = dest.with_name(dest.name + ".part")
    limit = min(max_bytes, expected_size) if expected_size is not None else max_bytes
    deadline = time.monotonic() + deadline_for(limit)
    cancel = threading.Event()
    over: list[str] = []

    def watch(done: int, total: int | None) -> None:
        if done > limit or (total is not None and total > limit):
            over.append(f"more than {limit} bytes")
        elif time.monotonic() > deadline:
            over.append(f"not complete within {deadline_for(limit):.0f} s")
        if over:
            cancel.set()
            raise DownloadError(f"Google Drive file {file_id}: {over[0]}; refusing it")

    try:
        got = gdown.download(
            id=file_id,
            output=str(part),
            quiet=not progress,
            resume=True,
            progress=watch,
            cancel=cancel,
            timeout=timeout,
            retries=2,
        )
    except DownloadError:
        part.unlink(missing_ok=True)
        raise
    except Exception as exc:
        if over:
            part.unlink(missing_ok=True)
            raise DownloadError(f"Google Drive file {file_id}: {over[0]}; refusing it") from None
        raise DownloadError(
            f"Google Drive file {file_id}: download failed "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}); "
            "run fetch again to resume"
        ) from None
    if not got or not part.is_file():
        raise DownloadError(
            f"Google Drive file {file_id}: download failed (quota or access); run fetch again later"
        )
    size = part.stat().st_size
    if size > limit or (expected_size is not None and size != expected_size):
        part.unlink()
        raise DownloadError(
            f"Google Drive file {file_id}: {size} bytes, expected "
            f"{expected_size if expected_size is not None else f'at most {limit}'}"
        )
    os.replace(part, dest)
    return dest


def _gdown() -> Any:
    try:
        import gdown
    except ImportError:
        raise DownloadError("this set is on Google Drive: install gdown (pip install gdown)") from None
    return gdown


# ------------------------------------------------------------------------------- Hugging Face
def hf_download(
    repo: str,
    path: str,
    dest: Path,
    *,
    revision: str | None = None,
    progress: bool = False,
    expected_size: int | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> Path:
    """Download ``path`` of the Hub dataset repo ``repo`` to ``dest`` (the ``HF_ENDPOINT`` the user
    set, else huggingface.co; ``HF_TOKEN`` goes to that origin only, never to its CDN)."""
    endpoint = (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")
    url = f"{endpoint}/datasets/{repo}/resolve/{quote(revision or 'main', safe='')}/{quote(path)}"
    token = os.environ.get("HF_TOKEN")
    return http_download(
        url,
        dest,
        expected_size=expected_size,
        max_bytes=max_bytes,
        progress=progress,
        headers={"Authorization": f"Bearer {token}"} if token else None,
    )


def check_sha256(
    path: Path, expected: str | None, label: str, on_mismatch: Callable[[Path], None] | None = None
) -> str:
    """sha256 of ``path``; ChecksumMismatchError (after ``on_mismatch``) when it differs."""
    got = sha256_file(path)[0]
    if expected and got != expected:
        if on_mismatch is not None:
            on_mismatch(path)
        raise ChecksumMismatchError(
            f"{label}: sha256 {got} does not match the catalog's {expected}; the download was "
            "deleted and nothing was imported (the file changed upstream or was tampered with)"
        )
    return got
