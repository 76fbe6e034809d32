"""Browse pages for a store: the artifact list with filters, one page per artifact, PNG grids.

``pages_router(store)`` returns a FastAPI router with

* ``GET /`` - the latest version of every name, filtered by ``dataset``, ``method``, ``ipc``
  (through the store's metadata query, the same one ``dcreg list`` uses);
* ``GET /{ns}/{name}[?rev=v3|TAG|sha256:..]`` - facts, an image grid, recorded evaluation
  results, versions and tags, and the rendered card;
* ``GET /{ns}/{name}/grid/{hex}.png`` - the grid of the version with that digest (immutable,
  so it is cached by digest in memory and by clients).

Everything shown is escaped (Jinja2 autoescape); the card's Markdown is rendered with raw HTML
disabled and markdown-it's link validation (no ``javascript:`` links). No external assets: the
CSS is inline. Include this router after the Hub API routes so ``/api/...`` paths reach those.
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures at runtime.

import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

import numpy as np

from ..errors import NotFoundError, UserError
from ..refs import parse_ref, validate_name

if TYPE_CHECKING:  # pragma: no cover
    from fastapi import APIRouter

    from ..store.base import Store, VersionInfo

#: Images per class shown on an artifact page.
GRID_PER_CLASS = 10
#: A grid is a preview: at most this many tiles (fewer per class for many classes) of at most
#: GRID_MAX_TILE_SIDE source pixels a side (larger images are subsampled), so one PNG stays small.
GRID_MAX_TILES = 200
GRID_MAX_TILE_SIDE = 64
#: Grid PNGs kept in memory (by digest).
GRID_CACHE_ENTRIES = 64
GRID_CACHE_BYTES = 64 << 20
#: First path segments that belong to the Hub API or the leaderboard, never to an artifact page.
RESERVED_NAMESPACES = frozenset({"api", "datasets", "static", "leaderboard"})


class GridCache:
    """A thread-safe LRU of PNG bytes keyed by version digest (content never changes)."""

    def __init__(self, max_entries: int = GRID_CACHE_ENTRIES, max_bytes: int = GRID_CACHE_BYTES):
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._data: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._render = threading.Lock()  # one render at a time: concurrent misses wait, then hit
        self.hits = self.misses = self.renders = 0

    def get(self, digest: str) -> bytes | None:
        with self._lock:
            data = self._data.get(digest)
            if data is None:
                self.misses += 1
                return None
            self._data.move_to_end(digest)
            self.hits += 1
            return data

    def get_or_render(self, digest: str, render: Callable[[], bytes]) -> bytes:
        """The cached PNG of ``digest``, rendering it once if no request has yet."""
        data = self.get(digest)
        if data is not None:
            return data
        with self._render:
            with self._lock:
                data = self._data.get(digest)
            if data is None:
                data = render()
                self.renders += 1
                self.put(digest, data)
        return data

    def put(self, digest: str, data: bytes) -> None:
        with self._lock:
            self._data[digest] = data
            self._data.move_to_end(digest)
            while self._data and (
                len(self._data) > self.max_entries or sum(map(len, self._data.values())) > self.max_bytes
            ):
                self._data.popitem(last=False)


def grid_png(art: Any, per_class: int = GRID_PER_CLASS) -> bytes:
    """PNG bytes of the labelled preview grid of ``art``, reading only the images it shows: at
    most GRID_MAX_TILES tiles (the first classes when there are more classes than that) of at
    most GRID_MAX_TILE_SIDE source pixels a side."""
    from ..formats.grid import display_labels, render_grid, to_unit_images

    labels, _ = display_labels(art)
    k = int(art.metadata["num_classes"])
    rows = min(k, GRID_MAX_TILES)
    per_row = max(1, min(per_class, GRID_MAX_TILES // rows))
    shown = np.sort(np.concatenate([np.flatnonzero(labels == c)[:per_row] for c in range(rows)]))
    _, h, w = art.metadata["image_shape"]
    step = max(1, -(-max(h, w) // GRID_MAX_TILE_SIDE))  # ceil: subsample large images
    images = art.numpy("images")  # memory-mapped: only the rows indexed below are read
    zca = {n: art.numpy(n) for n in ("zca_mean", "zca_inverse") if n in art.tensor_names}
    unit, _ = to_unit_images(np.asarray(images[shown]), art.metadata["pixel_space"], zca)
    unit = unit[:, :, ::step, ::step]
    image = render_grid(
        np.clip(unit, 0.0, 1.0), labels[shown], list(art.metadata["class_names"])[:rows], per_row
    )
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def render_markdown(text: str) -> str:
    """Markdown -> HTML with raw HTML escaped, tables on, unsafe link schemes dropped."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
    html: str = md.render(text)
    return html


def _safe_url(url: Any) -> str | None:
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def _pct(v: Any) -> str:
    return f"{100 * v:.2f}" if isinstance(v, (int, float)) else "-"


def _result_row(ann: Mapping[str, Any]) -> dict[str, Any]:
    """One results-table row, read through the typed record (a damaged record shows as such)."""
    from ..records import EvalRecord, RecordError

    created = str(ann.get("created_at", ""))[:19].replace("T", " ")
    try:
        r = EvalRecord.from_json(ann.get("record"))
    except RecordError as exc:
        return {
            "protocol": f"(unreadable result: {exc})",
            "arch": "-",
            "aug": "-",
            "epochs": "-",
            "runs": "-",
            "acc": "-",
            "baseline": "-",
            "delta": "-",
            "device": "-",
            "created_at": created,
        }
    base = r.baseline
    return {
        "protocol": r.protocol_id,
        "arch": r.protocol_field("arch"),
        "aug": r.protocol_field("augmentation"),
        "epochs": r.protocol_field("epochs"),
        "runs": r.runs,
        "acc": f"{_pct(r.mean)} ± {_pct(r.std)}",
        "baseline": f"{_pct(base.mean)} ± {_pct(base.std)}" if base else "-",
        "delta": f"{100 * base.delta:+.2f}" if base else "-",
        "device": r.device,
        "created_at": created,
    }


def _distinct(values: Iterable[Any]) -> list[str]:
    return sorted({str(v) for v in values if v not in (None, "")})


def pages_router(
    store: "Store", *, per_class: int = GRID_PER_CLASS, cache: GridCache | None = None
) -> "APIRouter":
    """A FastAPI router with the browse pages of ``store`` (any object with the Store interface)."""
    from fastapi import APIRouter, Request
    from fastapi.responses import HTMLResponse, Response
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("dcregistry.server", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    grids = cache if cache is not None else GridCache()
    router = APIRouter()

    def page(request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        root = str(request.scope.get("root_path", "")) + "/"
        html = env.get_template(template).render(root=root, **ctx)
        return HTMLResponse(
            html,
            status_code=status,
            headers={
                "Content-Security-Policy": "default-src 'none'; "
                "img-src 'self' data:; style-src 'unsafe-inline'; "
                "form-action 'self'; base-uri 'none'",
                "X-Content-Type-Options": "nosniff",
            },
        )

    def error(request: Request, status: int, message: str) -> HTMLResponse:
        title = "Not found" if status == 404 else "Bad request"
        return page(request, "error.html", status, title=title, message=message)

    def href(request: Request, name: str, rev: str | None = None) -> str:
        root = str(request.scope.get("root_path", ""))
        base = f"{root}/{quote(name, safe='/')}"
        return base + (f"?{urlencode({'rev': rev})}" if rev else "")

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request, dataset: str = "", method: str = "", ipc: str = "") -> HTMLResponse:
        filters = {"dataset": dataset.strip(), "method": method.strip(), "ipc": ipc.strip()}
        terms, problem = [], None
        for key in ("dataset", "method"):
            if filters[key]:
                terms.append(f"{key}={filters[key]}")
        if filters["ipc"]:
            if filters["ipc"].isascii() and filters["ipc"].isdigit() and len(filters["ipc"]) < 10:
                terms.append(f"ipc={int(filters['ipc'])}")
            else:
                problem = f"IPC must be a whole number, got {filters['ipc']!r}"
        everything = store.list()
        rows: list[VersionInfo] = []
        if problem is None:
            try:
                rows = store.list(query=terms) if terms else everything
            except UserError as exc:
                problem = str(exc)
        ctx = {
            "title": "Artifacts",
            "filters": filters,
            "error": problem,
            "datasets": _distinct([*(v.metadata.get("dataset") for v in everything), filters["dataset"]]),
            "methods": _distinct([*(v.metadata.get("method") for v in everything), filters["method"]]),
            "rows": [
                {
                    "name": v.name,
                    "href": href(request, v.name),
                    "version": v.version,
                    "dataset": v.metadata.get("dataset", "?"),
                    "method": v.metadata.get("method", "?"),
                    "ipc": v.metadata.get("ipc", "?"),
                    "label_kind": v.metadata.get("label_kind", "?"),
                    "pixel": (v.metadata.get("pixel_space") or {}).get("kind", "?"),
                    "tags": v.tags,
                    "created_at": v.created_at or "",
                }
                for v in rows
            ],
        }
        return page(request, "index.html", 400 if problem else 200, **ctx)

    def lookup(ns: str, name: str, rev: str | None) -> Any:
        if ns in RESERVED_NAMESPACES:
            raise NotFoundError(f"{ns}/{name} is not an artifact page")
        full = validate_name(f"{ns}/{name}")
        ref = parse_ref(f"{full}@{rev}" if rev else full)
        if ref.kind != "name":
            raise NotFoundError(f"{rev!r} is not a version, tag or digest of {full}")
        return store.resolve(ref)

    @router.get("/{ns}/{name}", response_class=HTMLResponse, include_in_schema=False)
    def artifact(request: Request, ns: str, name: str, rev: str | None = None) -> HTMLResponse:
        try:
            info = lookup(ns, name, rev or None)
            versions = store.list(name=info.name, all_versions=True)
            annotations = store.annotations(info, "eval") if hasattr(store, "annotations") else []
            results = [_result_row(a) for a in annotations]
            card = _card_text(store, info, annotations)
        except NotFoundError as exc:
            return error(request, 404, str(exc))
        except UserError as exc:
            return error(request, 400, str(exc))
        from ..card import parse_card

        try:
            _, body = parse_card(card)
        except UserError:
            body = card
        md = info.metadata
        c, h, w = md.get("image_shape", ["?", "?", "?"])
        root = str(request.scope.get("root_path", ""))
        return page(
            request,
            "artifact.html",
            title=f"{info.name} v{info.version}",
            info=info,
            md=md,
            shape=f"{c}x{h}x{w}",
            per_class=per_class,
            results=results,
            source_url=_safe_url((md.get("source") or {}).get("url")),
            grid_href=f"{root}/{quote(info.name, safe='/')}/grid/{info.digest[7:]}.png",
            versions=[
                {
                    "version": v.version,
                    "digest": v.digest,
                    "tags": v.tags,
                    "created_at": v.created_at or "",
                    "href": href(request, info.name, f"v{v.version}"),
                }
                for v in sorted(versions, key=lambda v: -v.version)
            ],
            card_html=_markup(render_markdown(body)),
        )

    @router.get("/{ns}/{name}/grid/{hexdigest}.png", include_in_schema=False)
    def grid(request: Request, ns: str, name: str, hexdigest: str) -> Response:
        if len(hexdigest) != 64 or not all(ch in "0123456789abcdef" for ch in hexdigest):
            return Response("not a sha256 digest\n", 404, media_type="text/plain")
        digest = f"sha256:{hexdigest}"
        headers = {"Cache-Control": "public, max-age=31536000, immutable", "ETag": f'"{hexdigest}"'}
        try:  # membership is checked every time: a removed version's grid is not served
            info = lookup(ns, name, digest)
            if info.digest != digest:
                raise NotFoundError(f"{ns}/{name} has no version {digest}")
            if request.headers.get("if-none-match") == headers["ETag"]:
                return Response(status_code=304, headers=headers)
            # push verified every byte and blobs are immutable: no re-hash for a preview
            data = grids.get_or_render(digest, lambda: grid_png(store.open(info, verify=False), per_class))
        except NotFoundError as exc:
            return Response(f"{exc}\n", 404, media_type="text/plain")
        except UserError as exc:
            return Response(f"{exc}\n", 400, media_type="text/plain")
        return Response(data, media_type="image/png", headers=headers)

    return router


def _card_text(store: "Store", info: "VersionInfo", annotations: list[dict[str, Any]]) -> str:
    """The store's card (with its recorded results), or one rendered from the metadata."""
    if hasattr(store, "card"):
        card: str = store.card(info)
        return card
    from ..card import render_card

    return render_card(info.metadata, [a.get("record") or {} for a in annotations], ref=info.ref)


def _markup(html: str) -> Any:
    from markupsafe import Markup

    return Markup(html)  # produced by markdown-it with raw HTML disabled: already escaped
