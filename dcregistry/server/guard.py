"""What every request to ``dcreg serve`` passes before any route runs (an ASGI middleware).

1. **Host**: the ``Host`` header must name this server: an IP literal, ``localhost`` (or a
   ``*.localhost`` name), the host of ``--public-url`` or one given with ``--allowed-host``.
   A page on another site that rebinds its own name to 127.0.0.1 sends its name and is refused
   (421), so a browser cannot read a loopback server for it.
2. **Body size**: each route has a body limit (:data:`ROUTES`; 64 KiB for every other route). A
   declared ``Content-Length`` above it is refused with 413 before a byte is read; a chunked body
   is counted while it streams and cut off with 413 at the limit. The framework never holds more
   than the limit of one request in memory.
3. **Token first**: on write routes the bearer token is checked before the body is read, so a
   client without the token costs the server one header parse (401, or 403 when read-only).

The routes check the token again themselves; this is the cheap gate in front of them.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException

from .auth import TokenAuth, WriteDenied
from .backend import MAX_COMMIT_BODY, MAX_LFS_OBJECT

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_LIMIT = 64 << 10
_REPO = r"/[^/]+/[^/]+"
#: (method, path pattern, body limit in bytes, write route: bearer token checked first).
ROUTES: tuple[tuple[str, re.Pattern[str], int, bool], ...] = tuple(
    (m, re.compile(p), limit, write)
    for m, p, limit, write in (
        ("POST", r"/api/repos/create", DEFAULT_LIMIT, True),
        ("POST", rf"/api/datasets{_REPO}/preupload/[^/]+", 1 << 20, True),
        ("POST", rf"/api/datasets{_REPO}/commit/[^/]+", MAX_COMMIT_BODY, True),
        ("POST", rf"/api/datasets{_REPO}/tag/[^/]+", DEFAULT_LIMIT, True),
        ("DELETE", rf"/api/datasets{_REPO}/tag/[^/]+", DEFAULT_LIMIT, True),
        ("POST", rf"/datasets{_REPO}\.git/info/lfs/objects/batch", 1 << 20, True),
        ("POST", rf"/datasets{_REPO}\.git/info/lfs/verify", DEFAULT_LIMIT, True),
        # LFS PUTs carry no token (presigned URLs, as on the Hub): the route checks the
        # signature before it reads the body.
        ("PUT", rf"/datasets{_REPO}\.git/info/lfs/objects/[^/]+/[^/]+", MAX_LFS_OBJECT, False),
        ("POST", rf"/api/datasets{_REPO}/paths-info/[^/]+", 1 << 20, False),
        ("POST", r"/api/validate-yaml", 2 << 20, False),
    )
)

LOCAL_NAMES = ("localhost",)


def header_safe(text: str) -> str:
    """One line of printable ASCII (HTTP header values are latin-1; messages may hold '…')."""
    text = text.replace("…", "...").replace("\r", " ").replace("\n", " ")
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in text)[:1000]


def error_body(status: int, message: str, code: str | None = None) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The server's error answer: ``{"error": message}`` plus the Hub's ``X-Error-*`` headers."""
    body = json.dumps({"error": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-error-message", header_safe(message).encode("latin-1")),
    ]
    if code:
        headers.append((b"x-error-code", code.encode("latin-1")))
    return body, headers


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes its route's limit (an HTTPException,
    so the framework's body parsing passes it on as the 413 it is, not as a parse error)."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body larger than {limit} bytes")
        self.limit = limit


def route_of(method: str, path: str) -> tuple[int, bool]:
    """(body limit, write route) of a request."""
    for m, pattern, limit, write in ROUTES:
        if m == method and pattern.fullmatch(path):
            return limit, write
    return DEFAULT_LIMIT, False


def _hostname(host_header: str) -> str | None:
    """The host part of a ``Host`` header (lowercased, no port, no brackets); None if malformed."""
    h = host_header.strip().lower()
    if h.startswith("["):
        end = h.find("]")
        if end < 0 or (h[end + 1 :] and not re.fullmatch(r":[0-9]{1,5}", h[end + 1 :])):
            return None
        return h[1:end]
    name, _, port = h.partition(":")
    if port and not re.fullmatch(r"[0-9]{1,5}", port):
        return None
    return name or None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostPolicy:
    """Which ``Host`` header values the server answers to."""

    def __init__(self, allowed: Iterable[str] = (), public_url: str | None = None):
        names = {a.strip().lower().strip("[]") for a in allowed if a.strip()}
        if public_url:
            host = urlsplit(public_url).hostname
            if host:
                names.add(host.lower())
        self.names = frozenset(names)

    def allows(self, host_header: str | None) -> bool:
        if host_header is None:  # HTTP/1.0 without Host: no browser sends that
            return True
        name = _hostname(host_header)
        if name is None:
            return False
        return _is_ip(name) or name in LOCAL_NAMES or name.endswith(".localhost") or name in self.names


class RequestGuard:
    """The ASGI middleware (see the module docstring)."""

    def __init__(
        self, app: Callable[[Scope, Receive, Send], Awaitable[None]], auth: TokenAuth, hosts: HostPolicy
    ):
        self.app, self.auth, self.hosts = app, auth, hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        host = headers.get(b"host")
        if not self.hosts.allows(host.decode("latin-1") if host is not None else None):
            await _answer(
                send,
                421,
                "this server does not answer to that host name; start it with "
                "--allowed-host NAME (or --public-url) to serve under it",
            )
            return
        limit, write = route_of(scope["method"], scope["path"])
        if write:
            auth = headers.get(b"authorization")
            try:
                self.auth.check_write(auth.decode("latin-1") if auth is not None else None)
            except WriteDenied as exc:
                await _answer(send, exc.status, exc.message)
                return
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or len(declared) > 20:
                await _answer(send, 400, "Content-Length is not a number")
                return
            if int(declared) > limit:
                await _answer(send, 413, f"request body larger than {limit} bytes")
                return
        started = False
        seen = 0

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge as exc:
            if started:
                raise
            await _answer(send, 413, exc.detail)


async def _answer(send: Send, status: int, message: str) -> None:
    body, headers = error_body(status, message)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
