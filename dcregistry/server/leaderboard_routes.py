"""``/leaderboard``: the static leaderboard site (:mod:`dcregistry.leaderboard`), served by
``dcreg serve`` from its results sources and its own store.

Sources: the results directories given with ``dcreg serve --results DIR`` and every results repo
of the server (:mod:`dcregistry.server.results_repo`, read at its ``main`` head). The site is
built in memory on the first request and rebuilt when a source changed (a record file added or
rewritten, a results repo's head moved) or the store's list of versions changed, checked at most
every ``check_seconds``. To add another kind of source (e.g. a results repo on the Hub), give
``leaderboard_router`` more :class:`~dcregistry.leaderboard.collect.Source` objects through
``extra_sources``; a source with a ``signature()`` method takes part in the change check.

Include this router *before* the browse pages: ``/leaderboard/<file>`` would otherwise match
their ``/{ns}/{name}`` route (an artifact named ``leaderboard/...`` is not browsable here).
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures at runtime.

import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..leaderboard import Site, build_site, content_type
from ..leaderboard.assets import CSP
from ..leaderboard.collect import FilesSource, ResultsDirSource, Source

if TYPE_CHECKING:  # pragma: no cover
    from fastapi import APIRouter

    from ..store.base import Store
    from .backend import RepoBackend

__all__ = ["leaderboard_router", "LeaderboardCache"]

HEADERS = {
    "Content-Security-Policy": CSP + "; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def results_repo_sources(backend: "RepoBackend") -> list[Source]:
    """One source per results repo of ``backend`` (its records at the head of ``main``)."""
    repos = backend.results
    out: list[Source] = []
    for name in repos.names():

        def files(name: str = name) -> Iterator[tuple[str, bytes | Exception]]:
            head = repos.head_oid(name)
            for path, (sha, _size) in sorted(repos.files(name, head).items()):
                try:
                    data = repos.blob(sha).read_bytes()
                except OSError as exc:
                    yield path, exc
                    continue
                yield path, data

        out.append(FilesSource(f"results repo {name}", files))
    return out


class LeaderboardCache:
    """The built site, rebuilt when its sources' signature changes."""

    def __init__(
        self,
        store: "Store",
        backend: "RepoBackend | None",
        results_dirs: Iterable[str | Path],
        extra_sources: Iterable[Source] = (),
        check_seconds: float = 2.0,
    ):
        self.store, self.backend = store, backend
        self.dirs = [ResultsDirSource(d, f"results directory {Path(d).name}") for d in results_dirs]
        self.extra = list(extra_sources)
        self.check_seconds = check_seconds
        self._lock = threading.Lock()
        self._site: Site | None = None
        self._sig: Any = None
        self._checked = 0.0
        self.builds = 0

    def sources(self) -> list[Source]:
        repos = results_repo_sources(self.backend) if self.backend is not None else []
        return [*self.dirs, *repos, *self.extra]

    def signature(self) -> Any:
        parts: list[Any] = [d.signature() for d in self.dirs]
        if self.backend is not None:
            parts.append(tuple((n, self.backend.results.head_oid(n)) for n in self.backend.results.names()))
        parts += [getattr(s, "signature", lambda: None)() for s in self.extra]
        parts.append(tuple(sorted(v.digest for v in self.store.list(all_versions=True))))
        return tuple(parts)

    def site(self) -> Site:
        with self._lock:
            now = time.monotonic()
            if self._site is None or now - self._checked >= self.check_seconds:
                sig = self.signature()
                self._checked = now
                if self._site is None or sig != self._sig:
                    self._site = build_site(self.sources(), self.store)
                    self._sig = sig
                    self.builds += 1
            return self._site


def leaderboard_router(
    store: "Store",
    backend: "RepoBackend | None" = None,
    results_dirs: Iterable[str | Path] = (),
    *,
    extra_sources: Iterable[Source] = (),
    check_seconds: float = 2.0,
) -> "APIRouter":
    """A FastAPI router serving the leaderboard at ``/leaderboard/`` (see the module docstring)."""
    from fastapi import APIRouter, Request
    from fastapi.responses import RedirectResponse, Response

    cache = LeaderboardCache(store, backend, results_dirs, extra_sources, check_seconds)
    router = APIRouter()
    router.leaderboard_cache = cache  # type: ignore[attr-defined]  # tests look at it

    @router.get("/leaderboard", include_in_schema=False)
    def root(request: Request) -> Response:
        return RedirectResponse(str(request.scope.get("root_path", "")) + "/leaderboard/", 307)

    @router.get("/leaderboard/{path:path}", include_in_schema=False)
    def file(path: str) -> Response:
        files = cache.site().files
        key = path or "index.html"
        data = files.get(key)
        if data is None:
            return Response("not a page of the leaderboard\n", 404, media_type="text/plain", headers=HEADERS)
        return Response(data, media_type=content_type(key), headers=HEADERS)

    return router
