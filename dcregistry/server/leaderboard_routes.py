"""``/leaderboard``: the static leaderboard site (:mod:`dcregistry.leaderboard`), served by
``dcreg serve`` from its results sources and its own store.

Sources: every results repo of the server (:mod:`dcregistry.server.results_repo`, its records
read at the head of ``main``), and the results directories given with ``dcreg serve --results
DIR``; one builder, :func:`dcregistry.leaderboard.build_site`, as ``dcreg leaderboard``. The
site is built in memory on the first request and rebuilt lazily, on a request, when its key
changed: the results repos' heads (read on every request: a few small files, so a record pushed
is on the next page asked for), and, checked at most every ``check_seconds``, the results
directories' files, the other sources' signatures and the store's list of versions. Artifacts
(names, cards, grids) are looked up again only when the store's versions change. A record that
cannot be read or is not valid is listed on the index page, never shown as a row; a build that
fails for another reason keeps the last site (or answers 503) and is retried when the key moves.
With no record at all, the index says so and how to push one.

To add another kind of source (e.g. a results repo on the Hub), give ``leaderboard_router``
more :class:`~dcregistry.leaderboard.collect.Source` objects through ``extra_sources``; a source
with a ``signature()`` method takes part in the change check.

Include this router *before* the browse pages: ``/leaderboard/<file>`` would otherwise match
their ``/{ns}/{name}`` route (an artifact named ``leaderboard/...`` is not browsable here).
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures at runtime.

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UserError
from ..leaderboard import Site, build_site, content_type
from ..leaderboard.assets import CSP
from ..leaderboard.collect import FilesSource, ResultsDirSource, Source
from ..leaderboard.html import esc
from ..results import MAX_RECORD_BYTES

if TYPE_CHECKING:  # pragma: no cover
    from fastapi import APIRouter

    from ..leaderboard.artifacts import ArtifactInfo
    from ..store.base import Store
    from .backend import RepoBackend

__all__ = ["leaderboard_router", "LeaderboardCache", "results_repo_heads", "results_repo_sources"]

log = logging.getLogger("dcregistry.server")

HEADERS = {
    "Content-Security-Policy": CSP + "; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

Heads = tuple[tuple[str, str], ...]


def results_repo_heads(backend: "RepoBackend") -> Heads:
    """``(name, head of main)`` of every results repo of ``backend``, by name."""
    repos = backend.results
    return tuple((name, repos.head_oid(name)) for name in repos.names())


def results_repo_sources(backend: "RepoBackend", heads: Heads | None = None) -> list[Source]:
    """One source per results repo of ``backend``: its records at ``heads`` (default: now).
    Nothing here raises for a damaged repo: an unreadable tree or blob is a problem listed on
    the index page (without the server's paths)."""
    repos = backend.results
    out: list[Source] = []
    for name, head in results_repo_heads(backend) if heads is None else heads:

        def files(name: str = name, head: str = head) -> Iterator[tuple[str, bytes | Exception]]:
            try:
                tree = sorted(repos.files(name, head).items())
            except OSError as exc:
                yield (
                    name,
                    UserError(f"the tree at {head[:12]} cannot be read ({exc.strerror or 'I/O error'})"),
                )
                return
            for path, (sha, size) in tree:
                if size > MAX_RECORD_BYTES:
                    yield path, UserError(f"{path[:200]}: is larger than {MAX_RECORD_BYTES} bytes")
                    continue
                try:
                    with open(repos.blob(sha), "rb") as f:
                        data = f.read(MAX_RECORD_BYTES + 1)
                except OSError as exc:
                    yield (
                        path,
                        UserError(f"{path[:200]}: cannot be read ({exc.strerror or type(exc).__name__})"),
                    )
                    continue
                yield path, data

        out.append(FilesSource(f"results repo {name}", files))
    return out


def empty_note(heads: Heads, public_url: str | None) -> str:
    """The index's note for a server with no record yet: how to push one (HTML)."""
    base = (public_url or "http://HOST:PORT").rstrip("/")
    repo = heads[0][0] if heads else "NS/NAME"
    return (
        "No result records yet. Push a sweep\u2019s results to a results repo of this server with "
        f"<code>harness results push RESULTS_DIR --to {esc(base)}/{esc(repo)}</code> "
        "(<code>DCREG_TOKEN</code> set to the server\u2019s token; a repo becomes a results repo by "
        "its first push, or start the server with <code>--results-repo NS/NAME</code>), run "
        "<code>harness sweep SPEC --push-results TARGET</code>, or start the server with "
        "<code>--results DIR</code>. This page shows every record the server holds as it arrives."
    )


_UNBUILT = object()


class LeaderboardCache:
    """The built site and the key it was built for (see the module docstring)."""

    def __init__(
        self,
        store: "Store",
        backend: "RepoBackend | None",
        results_dirs: Iterable[str | Path],
        extra_sources: Iterable[Source] = (),
        check_seconds: float = 2.0,
        public_url: str | None = None,
    ):
        self.store, self.backend = store, backend
        self.dirs = [ResultsDirSource(d, f"results directory {Path(d).name}") for d in results_dirs]
        self.extra = list(extra_sources)
        self.check_seconds = check_seconds
        self.public_url = public_url
        self._lock = threading.Lock()
        self._site: Site | None = None
        self._key: Any = _UNBUILT
        self._slow: Any = None
        self._store_sig: Any = None
        self._known: dict[str, ArtifactInfo] = {}
        self._checked = -float("inf")
        self.builds = 0
        self.failures = 0

    def heads(self) -> Heads:
        return results_repo_heads(self.backend) if self.backend is not None else ()

    def sources(self, heads: Heads | None = None) -> list[Source]:
        repos = results_repo_sources(self.backend, heads) if self.backend is not None else []
        return [*self.dirs, *repos, *self.extra]

    def store_signature(self) -> Any:
        return tuple(sorted(v.digest for v in self.store.list(all_versions=True)))

    def slow_signature(self) -> Any:
        """What is checked at most every ``check_seconds``: directory scans and the store."""
        parts: list[Any] = [d.signature() for d in self.dirs]
        parts += [getattr(s, "signature", lambda: None)() for s in self.extra]
        return (tuple(parts), self.store_signature())

    def site(self) -> Site | None:
        """The site for the current key (built now if it moved); None if it could not be built
        and no earlier build exists."""
        with self._lock:
            now = time.monotonic()
            try:
                heads = self.heads()
                if now - self._checked >= self.check_seconds:
                    self._checked = now
                    self._slow = self.slow_signature()
            except Exception:  # the disk, not a record: keep serving what we had
                log.exception("the leaderboard's sources cannot be checked; serving the last build")
                return self._site
            key = (heads, self._slow)
            if key == self._key:
                return self._site
            self._key = key  # a failed build is retried when the key moves, not per request
            if self._slow[1] != self._store_sig:
                self._known.clear()  # versions came or went: look the artifacts up again
                self._store_sig = self._slow[1]
            try:
                self._site = build_site(
                    self.sources(heads),
                    self.store,
                    known=self._known,
                    empty_note=empty_note(heads, self.public_url),
                )
                self.builds += 1
            except Exception:  # a bug or the machine, never a record (those are listed on the index)
                self.failures += 1
                self._known.clear()
                log.exception("the leaderboard could not be rebuilt; serving the last build")
            return self._site


def leaderboard_router(
    store: "Store",
    backend: "RepoBackend | None" = None,
    results_dirs: Iterable[str | Path] = (),
    *,
    extra_sources: Iterable[Source] = (),
    check_seconds: float = 2.0,
    public_url: str | None = None,
) -> "APIRouter":
    """A FastAPI router serving the leaderboard at ``/leaderboard/`` (see the module docstring)."""
    from fastapi import APIRouter, Request
    from fastapi.responses import RedirectResponse, Response

    cache = LeaderboardCache(store, backend, results_dirs, extra_sources, check_seconds, public_url)
    router = APIRouter()
    router.leaderboard_cache = cache  # type: ignore[attr-defined]  # tests look at it

    @router.get("/leaderboard", include_in_schema=False)
    def root(request: Request) -> Response:
        return RedirectResponse(str(request.scope.get("root_path", "")) + "/leaderboard/", 307)

    @router.get("/leaderboard/{path:path}", include_in_schema=False)
    def file(path: str) -> Response:
        site = cache.site()
        if site is None:
            return Response(
                "the leaderboard could not be built; the server log says why\n",
                503,
                media_type="text/plain",
                headers=HEADERS,
            )
        files = site.files
        key = path or "index.html"
        data = files.get(key)
        if data is None:
            return Response("not a page of the leaderboard\n", 404, media_type="text/plain", headers=HEADERS)
        return Response(data, media_type=content_type(key), headers=HEADERS)

    return router
