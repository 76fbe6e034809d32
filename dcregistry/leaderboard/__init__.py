"""A static leaderboard site built from results stores (torch-free; never imports harness).

::

    from dcregistry.leaderboard import ResultsDirSource, build_site

    site = build_site([ResultsDirSource("sweep-results/digits")], store="local")
    site.write("site/")          # index.html, d/<dataset>.html, a/<digest>.html ...

Sources are results directories (:class:`ResultsDirSource`) or any files in the results layout
(:class:`FilesSource`: a results repo's tree). ``store`` is where the artifacts' names, cards,
``method_config`` and sample grids are looked up; artifacts it does not hold are still shown,
with their ref. ``harness leaderboard``, ``dcreg leaderboard`` and ``dcreg serve``'s
``/leaderboard`` all call :func:`build_site`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .collect import Collection, FilesSource, ResultsDirSource, Row, Source, collect

if TYPE_CHECKING:  # pragma: no cover
    from ..store.base import Store
    from .artifacts import ArtifactInfo

__all__ = ["Site", "build_site", "collect", "Collection", "Row", "Source", "ResultsDirSource", "FilesSource"]

#: Content types of the site's files (what ``dcreg serve`` sends).
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".md": "text/plain; charset=utf-8",
}


@dataclass
class Site:
    """The built site: ``files`` maps each relative path to its bytes."""

    files: dict[str, bytes]
    collection: Collection = field(repr=False)

    def write(self, out: str | Path) -> Path:
        """Write every file under ``out`` (created; other files there are left alone), each
        atomically (temp + rename); returns ``out``."""
        from ..fsio import atomic_write_bytes, ensure_dir

        root = ensure_dir(Path(out))
        for rel, data in sorted(self.files.items()):
            path = root / rel
            ensure_dir(path.parent)
            atomic_write_bytes(path, data)
        return root

    def summary(self) -> str:
        c = self.collection
        sets = len(c.digests())
        cells = sum(r.runs for r in c.rows.values())
        line = f"{len(c.rows)} rows ({sets} sets, {cells} evaluations) over {len(c.datasets())} dataset(s)"
        if c.failed:
            line += f"; {c.failed} failed cell(s) left out"
        if c.problems:
            line += f"; {len(c.problems)} file(s) that are not valid records left out"
        return line


def build_site(
    sources: Iterable[Source],
    store: Store | str | os.PathLike[str] | None = None,
    *,
    grids: bool = True,
    title: str = "Leaderboard",
    collection: Collection | None = None,
    known: dict[str, ArtifactInfo] | None = None,
    empty_note: str | None = None,
) -> Site:
    """Collect ``sources``, look their artifacts up in ``store`` (a Store, a store spec as
    ``--store`` takes it, or None for none), render the site.

    ``known`` keeps artifacts looked up before (by digest) for a caller that rebuilds while the
    store is unchanged (``dcreg serve``): those whose records still give the same ref are reused,
    the others looked up and added, digests no longer shown dropped. ``empty_note`` is the
    index page's HTML when there is no record (the caller escapes what it puts in)."""
    from .artifacts import lookup_artifacts
    from .render import render_site

    srcs = list(sources)  # read twice: records, then grids
    c = collection if collection is not None else collect(srcs)
    st: Store | None
    if store is None or not isinstance(store, (str, os.PathLike)):
        st = store
    else:
        from ..store import get_store

        st = get_store(os.fspath(store))
    refs: dict[str, str | None] = {}
    for row in c.rows.values():
        refs.setdefault(row.digest, row.ref)
    if known is None:
        arts = lookup_artifacts(refs, st, grids=grids)
    else:
        for d in [d for d in known if d not in refs]:
            del known[d]
        known.update(
            lookup_artifacts(
                {d: r for d, r in refs.items() if d not in known or known[d].ref != r}, st, grids=grids
            )
        )
        arts = {d: known[d] for d in refs}
    if grids:  # a set no store holds: the grid its results directory keeps, when one does
        for d, art in arts.items():
            if art.grid_png is None and art.ref and (png := _results_grid(srcs, art.ref)) is not None:
                arts[d] = replace(art, grid_png=png)
    return Site(render_site(c, arts, title=title, empty_note=empty_note), c)


def _results_grid(sources: list[Source], ref: str) -> bytes | None:
    """The sample grid a results-directory source keeps for the set ``ref`` names (None: none)."""
    for src in sources:
        grid = getattr(src, "grid", None)  # only results directories keep grids
        png: bytes | None = grid(ref) if grid is not None else None
        if png is not None:
            return png
    return None


def content_type(path: str, types: Mapping[str, str] = CONTENT_TYPES) -> str:
    return types.get(os.path.splitext(path)[1], "application/octet-stream")
