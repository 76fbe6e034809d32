"""The ``dcreg serve`` application: the Hub API (and browse pages) over a local store."""

from __future__ import annotations

import contextlib
import errno
import logging
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.applications import Starlette

from .. import __version__
from ..errors import NotFoundError, UserError
from .auth import TokenAuth, WriteDenied
from .backend import SWEEP_SECONDS, HubError, RepoBackend
from .guard import BodyTooLarge, HostPolicy, RequestGuard, error_body
from .hubapi import hub_router
from .leaderboard_routes import leaderboard_router

log = logging.getLogger("dcregistry.server")


def _error(status: int, message: str, code: str | None = None) -> Response:
    body, headers = error_body(status, message, code)
    return Response(body, status_code=status, headers={k.decode(): v.decode("latin-1") for k, v in headers})


def create_app(
    home: str | Path | None = None,
    token: str | None = None,
    *,
    public_url: str | None = None,
    allowed_hosts: Iterable[str] = (),
    sweep_seconds: float = SWEEP_SECONDS,
    results_repos: Iterable[str] = (),
    results_dirs: Iterable[str | Path] = (),
) -> Starlette:
    """The ASGI app serving the local store at ``home`` (default $DCREG_HOME); writes need ``token``.

    ``public_url`` is the address clients reach it by (behind a TLS proxy: upload links use it);
    the server answers to IP literals, localhost names, that URL's host and ``allowed_hosts``
    (see :mod:`dcregistry.server.guard`). Expired staging is swept every ``sweep_seconds``.
    ``results_repos`` (``NS/NAME``) are created as results repos if they are not already
    (:mod:`dcregistry.server.results_repo`; UserError if one holds artifact versions).
    ``/leaderboard`` is built from ``results_dirs`` and the results repos
    (:mod:`dcregistry.server.leaderboard_routes`)."""
    from ..store.local import LocalStore

    store = LocalStore(home)
    store.root.mkdir(parents=True, exist_ok=True)
    backend = RepoBackend(store, store.root)
    from ..refs import validate_name

    for repo in results_repos:
        backend.make_results(validate_name(repo))
    auth = TokenAuth(token)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = backend.start_sweeper(sweep_seconds)
        try:
            yield
        finally:
            stop()

    # No /docs or /redoc: they load their scripts from a CDN. The schema stays at /openapi.json.
    app = FastAPI(
        title="dcregistry",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        description="A Hugging Face Hub compatible registry of dcreg/1 artifacts.",
    )
    app.state.store = store
    app.state.backend = backend
    app.state.auth = auth

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, exc: BodyTooLarge) -> Response:
        return _error(413, exc.detail)

    @app.exception_handler(HubError)
    async def _hub_error(request: Request, exc: HubError) -> Response:
        return _error(exc.status, exc.message, exc.code)

    @app.exception_handler(WriteDenied)
    async def _denied(request: Request, exc: WriteDenied) -> Response:
        return _error(exc.status, exc.message)

    @app.exception_handler(NotFoundError)
    async def _not_found(request: Request, exc: NotFoundError) -> Response:
        return _error(404, str(exc), "RevisionNotFound")

    @app.exception_handler(UserError)
    async def _user_error(request: Request, exc: UserError) -> Response:
        return _error(400, str(exc))

    @app.exception_handler(OSError)
    async def _os_error(request: Request, exc: OSError) -> Response:
        # the machine's state (disk full, read-only volume), not the request's: say so, no paths
        log.error("storage error on %s %s: %s", request.method, request.url.path, exc.strerror)
        status = 507 if exc.errno in (errno.ENOSPC, errno.EDQUOT) else 503
        return _error(
            status, f"the server cannot write its store ({exc.strerror or 'I/O error'}); nothing was changed"
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(422, f"invalid request: {where}: {first.get('msg', 'bad value')}")

    app.include_router(hub_router(backend, auth, public_url))
    leaderboard = leaderboard_router(store, backend, results_dirs, public_url=public_url)
    app.state.leaderboard = leaderboard.leaderboard_cache  # type: ignore[attr-defined]
    app.include_router(leaderboard)  # before the pages' /{ns}/{name}
    try:  # browse pages live in their own module (issue 8, item 3)
        from .pages import pages_router
    except ImportError:
        pass
    else:
        app.include_router(pages_router(store))
    app.add_middleware(RequestGuard, auth=auth, hosts=HostPolicy(allowed_hosts, public_url))
    return app
