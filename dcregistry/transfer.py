"""The one HTTP(S) downloader: published sets (``dcreg fetch``) and Hub-store files (pull/open).

A download trusts nothing the server says. It is bounded in

* **bytes**: never more than ``max_bytes`` (or exactly ``expected_size``) are accepted, whatever
  ``Content-Length`` claims;
* **attempts**: every request counts against ``retries``, including answers that make no
  progress (a ranged answer that never advances cannot loop);
* **time**: a per-read timeout and a deadline for the whole download;
* **where it goes**: redirects are followed (at most :data:`MAX_REDIRECTS`) only to ``https`` or
  to a loopback ``http`` address, and credentials go only to the origin they were given for.

Partial content lives in ``PART`` (with its validator in ``PART.validator``). A download
continues it with ``Range`` + ``If-Range`` only when the server gave a strong ``ETag`` or a
``Last-Modified`` for it: if the file changed upstream the server answers with the whole new
file instead of splicing old and new bytes. A part without a validator is started over.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from . import __version__
from .errors import UserError

CHUNK = 1 << 20
MAX_REDIRECTS = 5
#: The slowest transfer rate a download deadline allows for (bytes/s), beyond a fixed minute.
MIN_RATE = 128 << 10
TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_CONTENT_RANGE_RE = re.compile(r"bytes ([0-9]{1,19})-([0-9]{1,19})/([0-9]{1,19}|\*)")
_UNSATISFIED_RANGE_RE = re.compile(r"bytes \*/([0-9]{1,19})")
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]{1,200}")  # a header-safe validator value


class DownloadError(UserError):
    """A download failed (network, HTTP status, size, time) in a way the user can act on."""


class _Retry(Exception):
    """A transient failure: try again if the budget allows."""


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` names this machine (localhost or a loopback address)."""
    if not host:
        return False
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_transfer_url(url: str, what: str = "download") -> None:
    """DownloadError unless ``url`` is https, or http to a loopback address."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and is_loopback(parts.hostname):
        return
    raise DownloadError(
        f"{what}: refusing {url[:120]!r}: only https URLs (or http on this machine's loopback) are followed"
    )


def same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.hostname, pa.port) == (pb.scheme, pb.hostname, pb.port)


def deadline_for(max_bytes: int) -> float:
    """Seconds a download of up to ``max_bytes`` may take in all."""
    return 60.0 + max_bytes / MIN_RATE


def download(
    url: str,
    part: Path,
    *,
    max_bytes: int,
    expected_size: int | None = None,
    headers: Mapping[str, str] | None = None,
    retries: int = 4,
    read_timeout: float = 60.0,
    total_seconds: float | None = None,
    backoff: float = 0.5,
    progress: bool = False,
    label: str | None = None,
) -> Path:
    """Download ``url`` into ``part`` (created or continued); returns ``part`` when complete.

    ``headers`` (e.g. a bearer token) go only to ``url``'s own origin, never to a redirect target
    elsewhere. ``expected_size`` makes any other length an error. The caller moves ``part`` into
    place after checking its content (sha256)."""
    import httpx

    check_transfer_url(url)
    limit = min(max_bytes, expected_size) if expected_size is not None else max_bytes
    total = total_seconds if total_seconds is not None else deadline_for(limit)
    deadline = time.monotonic() + total
    sidecar = part.with_name(part.name + ".validator")
    timeout = httpx.Timeout(read_timeout, connect=min(read_timeout, 30.0))
    attempt = 0
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=True) as client:
        while True:
            if time.monotonic() > deadline:
                raise DownloadError(
                    f"{url}: not complete within {total:.0f} s; {_kept(part)} and the next run continues it"
                )
            validator = _load_validator(sidecar, url) if part.exists() else None
            if part.exists() and (validator is None or part.stat().st_size > limit):
                part.unlink()  # no way to tell whether it is still the same file: start over
            try:
                done = _attempt(
                    client,
                    url,
                    part,
                    sidecar,
                    validator,
                    limit,
                    expected_size,
                    dict(headers or {}),
                    deadline,
                    progress,
                    label or part.name,
                )
                if done is not False:
                    sidecar.unlink(missing_ok=True)
                    return part
            except (_Retry, httpx.TransportError) as exc:
                if attempt >= retries:
                    raise DownloadError(
                        f"{url}: download interrupted after {attempt + 1} attempt(s) "
                        f"({_why(exc)}); {_kept(part)} and the next run continues it"
                    ) from None
            else:
                if attempt >= retries:  # answers that made no progress count too
                    raise DownloadError(
                        f"{url}: no complete answer after {attempt + 1} attempt(s); {_kept(part)}"
                    )
            attempt += 1
            time.sleep(min(backoff * 2 ** (attempt - 1), 8.0, max(0.0, deadline - time.monotonic())))


def _why(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:160] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _kept(part: Path) -> str:
    got = part.stat().st_size if part.exists() else 0
    return f"{got} bytes are kept in {part}"


def _load_validator(sidecar: Path, url: str) -> dict[str, Any] | None:
    try:
        if sidecar.stat().st_size > 4096:
            return None
        doc = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(doc, dict) or doc.get("url") != url or not isinstance(doc.get("value"), str):
        return None
    return doc if _TOKEN_CHARS.fullmatch(doc["value"]) or _http_date(doc["value"]) else None


def _http_date(value: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z]{3}, [0-9]{2} [A-Za-z]{3} [0-9]{4} [0-9:]{8} GMT", value))


def _validator_of(resp: Any) -> str | None:
    """A strong ETag or a Last-Modified date usable in If-Range; None when there is none."""
    etag = (resp.headers.get("etag") or "").strip()
    if etag.startswith('"') and etag.endswith('"') and len(etag) > 2 and _TOKEN_CHARS.fullmatch(etag):
        return etag
    lm = (resp.headers.get("last-modified") or "").strip()
    return lm if _http_date(lm) else None


def _send(client: Any, url: str, headers: dict[str, str], deadline: float) -> Any:
    """GET ``url`` following allowed redirects; the streaming response (caller closes it)."""
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        hdrs = {"User-Agent": f"dcreg/{__version__}", "Accept-Encoding": "identity"}
        for k, v in headers.items():
            if k.lower() not in ("authorization", "cookie") or same_origin(current, url):
                hdrs[k] = v
        resp = client.send(client.build_request("GET", current, headers=hdrs), stream=True)
        if resp.status_code in (301, 302, 303, 307, 308) and resp.headers.get("location"):
            target = urljoin(current, resp.headers["location"])
            resp.close()
            check_transfer_url(target, f"{url}: redirect")
            current = target
            if time.monotonic() > deadline:
                raise _Retry("deadline reached while following redirects")
            continue
        return resp
    raise DownloadError(f"{url}: more than {MAX_REDIRECTS} redirects")


def _attempt(
    client: Any,
    url: str,
    part: Path,
    sidecar: Path,
    validator: dict[str, Any] | None,
    limit: int,
    expected: int | None,
    headers: dict[str, str],
    deadline: float,
    progress: bool,
    label: str,
) -> dict[str, Any] | bool | None:
    """One request. Returns the validator record (or None) when ``part`` is complete, False to
    go round again without having failed."""
    have = part.stat().st_size if part.exists() else 0
    if have and validator is not None:
        headers = {**headers, "Range": f"bytes={have}-", "If-Range": validator["value"]}
    elif have:
        part.unlink()
        have = 0
    resp = _send(client, url, headers, deadline)
    try:
        if resp.status_code == 416 and have:
            m = _UNSATISFIED_RANGE_RE.fullmatch((resp.headers.get("content-range") or "").strip())
            if m is not None and int(m.group(1)) == have and (expected is None or have == expected):
                return validator
            part.unlink()  # the remote file is not what we hold: start over
            return False
        if resp.status_code in TRANSIENT_STATUS:
            raise _Retry(f"HTTP {resp.status_code}")
        if resp.status_code == 206 and have:
            rng = _content_range(resp.headers.get("content-range"))
            if rng is None or rng[0] != have:
                part.unlink(missing_ok=True)  # not the range we asked for: start over
                return False
            announced = rng[2]
            mode = "ab"
        elif resp.status_code == 200:
            length = resp.headers.get("content-length") or ""
            announced = int(length) if length.isdigit() and len(length) < 20 else None
            have, mode = 0, "wb"
        else:
            raise DownloadError(
                f"{url}: HTTP {resp.status_code}" + (f" {resp.reason_phrase}" if resp.reason_phrase else "")
            )
        if announced is not None and announced > limit:
            raise DownloadError(
                f"{url}: the server announces {announced} bytes, more than the {limit} expected; refusing it"
            )
        if expected is not None and announced is not None and announced != expected:
            raise DownloadError(f"{url}: the server announces {announced} bytes, expected {expected}")
        value = _validator_of(resp)
        record = {"url": url, "value": value} if value else None
        if mode == "wb":
            if record is not None:
                sidecar.write_text(json.dumps(record))
            else:
                sidecar.unlink(missing_ok=True)
        from tqdm import tqdm

        with (
            open(part, mode) as f,
            tqdm(
                total=announced if announced is not None else expected,
                initial=have,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=label,
                disable=not progress,
                leave=False,
            ) as bar,
        ):
            for block in resp.iter_raw():
                have += len(block)
                if have > limit:
                    raise DownloadError(f"{url}: more than {limit} bytes; refusing it")
                f.write(block)
                bar.update(len(block))
                if time.monotonic() > deadline:
                    raise _Retry("deadline reached mid-transfer")
            f.flush()
            os.fsync(f.fileno())
        want = announced if announced is not None else expected
        if want is not None and have < want:
            raise _Retry(f"connection closed after {have} of {want} bytes")
        if want is not None and have != want:
            raise DownloadError(f"{url}: received {have} bytes, expected {want}")
        return record
    finally:
        resp.close()


def _content_range(value: str | None) -> tuple[int, int, int | None] | None:
    m = _CONTENT_RANGE_RE.fullmatch((value or "").strip())
    if not m:
        return None
    total = None if m.group(3) == "*" else int(m.group(3))
    return int(m.group(1)), int(m.group(2)), total


def fetch_bytes(
    url: str,
    *,
    max_bytes: int,
    headers: Mapping[str, str] | None = None,
    read_timeout: float = 60.0,
    retries: int = 2,
    on_status: Callable[[int, str], None] | None = None,
) -> bytes:
    """A small document (a manifest) in memory, under the same bounds as :func:`download`.

    ``on_status(status, body_text)`` is called for a non-2xx answer and may raise a better error."""
    import httpx

    check_transfer_url(url)
    deadline = time.monotonic() + deadline_for(max_bytes)
    last: BaseException | None = None
    with httpx.Client(
        timeout=httpx.Timeout(read_timeout, connect=min(read_timeout, 30.0)), follow_redirects=False
    ) as client:
        for attempt in range(retries + 1):
            try:
                resp = _send(client, url, dict(headers or {}), deadline)
                try:
                    if resp.status_code in TRANSIENT_STATUS:
                        raise _Retry(f"HTTP {resp.status_code}")
                    chunks, size = [], 0
                    for block in resp.iter_raw():
                        size += len(block)
                        if size > max_bytes:
                            raise DownloadError(f"{url}: more than {max_bytes} bytes; refusing it")
                        chunks.append(block)
                        if time.monotonic() > deadline:
                            raise _Retry("deadline reached")
                    body = b"".join(chunks)
                    if resp.status_code != 200:
                        if on_status is not None:
                            on_status(resp.status_code, body[:2000].decode("utf-8", "replace"))
                        raise DownloadError(f"{url}: HTTP {resp.status_code}")
                    return body
                finally:
                    resp.close()
            except (_Retry, httpx.TransportError) as exc:
                last = exc
                if attempt < retries:
                    time.sleep(min(0.5 * 2**attempt, 4.0))
    raise DownloadError(
        f"{url}: failed after {retries + 1} attempt(s) ({_why(last) if last else 'no answer'})"
    )
