"""``dcreg serve``: a self-hostable registry speaking the Hugging Face Hub HTTP API, with
browse pages.

``create_app(home, token)`` builds the FastAPI application over the local store at ``home``: the
Hub API (:mod:`dcregistry.server.hubapi`) and the browse pages (:mod:`dcregistry.server.pages`);
``serve(...)`` runs it with uvicorn.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["create_app", "serve"]


def create_app(
    home: str | Path | None = None,
    token: str | None = None,
    *,
    public_url: str | None = None,
    allowed_hosts: Iterable[str] = (),
    results_repos: Iterable[str] = (),
    results_dirs: Iterable[str | Path] = (),
) -> Starlette:
    """The app over the local store at ``home``; writes need ``token`` (None: read-only);
    ``results_repos`` are made results repos; ``/leaderboard`` shows them and ``results_dirs``.
    (FastAPI is imported lazily; see :func:`dcregistry.server.app.create_app`.)"""
    from .app import create_app as _create

    return _create(
        home,
        token,
        public_url=public_url,
        allowed_hosts=allowed_hosts,
        results_repos=results_repos,
        results_dirs=results_dirs,
    )


def serve(
    home: str | Path | None = None,
    token: str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8008,
    log_level: str = "info",
    public_url: str | None = None,
    allowed_hosts: Iterable[str] = (),
    results_repos: Iterable[str] = (),
    results_dirs: Iterable[str | Path] = (),
) -> None:
    """Run the server until interrupted (uvicorn; access logs carry paths, never tokens)."""
    import uvicorn

    app = create_app(
        home,
        token,
        public_url=public_url,
        allowed_hosts=(host, *allowed_hosts),
        results_repos=results_repos,
        results_dirs=results_dirs,
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level, server_header=False)
