"""The ``dcreg serve`` application: the Hub API (and browse pages) over a local store."""

from __future__ import annotations

import errno
import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from .. import __version__
from ..errors import NotFoundError, UserError
from .auth import TokenAuth, WriteDenied
from .backend import HubError, RepoBackend
from .hubapi import hub_router

log = logging.getLogger("dcregistry.server")


def _header_safe(text: str) -> str:
    """One line of printable ASCII (HTTP header values are latin-1; messages may hold '…')."""
    text = text.replace("…", "...").replace("\r", " ").replace("\n", " ")
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in text)[:1000]


def _error(status: int, message: str, code: str | None = None) -> JSONResponse:
    headers = {"X-Error-Message": _header_safe(message)}
    if code:
        headers["X-Error-Code"] = code
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def create_app(home: str | Path | None = None, token: str | None = None, *,
               public_url: str | None = None) -> FastAPI:
    """A FastAPI app serving the local store at ``home`` (default $DCREG_HOME); writes need ``token``."""
    from ..store.local import LocalStore

    store = LocalStore(home)
    store.root.mkdir(parents=True, exist_ok=True)
    backend = RepoBackend(store, store.root)
    auth = TokenAuth(token)
    app = FastAPI(title="dcregistry", version=__version__,
                  description="A Hugging Face Hub compatible registry of dcreg/1 artifacts.")
    app.state.store = store
    app.state.backend = backend
    app.state.auth = auth

    @app.exception_handler(HubError)
    async def _hub_error(request: Request, exc: HubError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.code)

    @app.exception_handler(WriteDenied)
    async def _denied(request: Request, exc: WriteDenied) -> JSONResponse:
        return _error(exc.status, exc.message)

    @app.exception_handler(NotFoundError)
    async def _not_found(request: Request, exc: NotFoundError) -> JSONResponse:
        return _error(404, str(exc), "RevisionNotFound")

    @app.exception_handler(UserError)
    async def _user_error(request: Request, exc: UserError) -> JSONResponse:
        return _error(400, str(exc))

    @app.exception_handler(OSError)
    async def _os_error(request: Request, exc: OSError) -> JSONResponse:
        # the machine's state (disk full, read-only volume), not the request's: say so, no paths
        log.error("storage error on %s %s: %s", request.method, request.url.path, exc.strerror)
        status = 507 if exc.errno in (errno.ENOSPC, errno.EDQUOT) else 503
        return _error(status, f"the server cannot write its store ({exc.strerror or 'I/O error'}); "
                              "nothing was changed")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(422, f"invalid request: {where}: {first.get('msg', 'bad value')}")

    app.include_router(hub_router(backend, auth, public_url))
    try:  # browse pages live in their own module (issue 8, item 3)
        from .pages import pages_router
    except ImportError:
        pages_router = None
    if pages_router is not None:
        app.include_router(pages_router(store))
    return app
