"""Browse pages over HTTP (httpx against a real uvicorn server on 127.0.0.1)."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image

from .pages_helpers import HOSTILE, page_store, pages_server  # noqa: F401  (fixtures)


def get(server, path: str, **params) -> httpx.Response:
    return httpx.get(server.base_url + path, params=params or None, timeout=30)


def test_index_lists_latest_version_of_every_name(pages_server):
    r = get(pages_server, "/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "lab/cifar-dc" in r.text and "lab/digits-random" in r.text
    assert r.text.count('class="artifact-link"') == 2
    assert "<td>v2</td>" in r.text  # the latest version of lab/cifar-dc
    assert "default-src 'none'" in r.headers["content-security-policy"]


def test_pages_link_the_leaderboard_and_its_namespace_is_not_an_artifact_page(pages_server):
    r = get(pages_server, "/")
    assert 'href="/leaderboard/"' in r.text  # served by dcreg serve (test_leaderboard_browser.py)
    from dcregistry.server.pages import RESERVED_NAMESPACES

    assert "leaderboard" in RESERVED_NAMESPACES  # /leaderboard/... is the leaderboard's, always


@pytest.mark.parametrize(
    "params,expect",
    [
        ({"dataset": "cifar10"}, ["lab/cifar-dc"]),
        ({"method": "random"}, ["lab/digits-random"]),
        ({"ipc": "1"}, ["lab/digits-random"]),
        ({"dataset": "cifar10", "ipc": "2", "method": "dc"}, ["lab/cifar-dc"]),
        ({"dataset": "svhn"}, []),
    ],
)
def test_index_filters(pages_server, params, expect):
    r = get(pages_server, "/", **params)
    assert r.status_code == 200
    for name in ("lab/cifar-dc", "lab/digits-random"):
        assert (f">{name}</a>" in r.text) == (name in expect), (params, name)
    if not expect:
        assert 'id="empty"' in r.text


@pytest.mark.parametrize("ipc", ["abc", "-1", "1e3", "２"])
def test_bad_ipc_filter_is_a_400_page_not_a_crash(pages_server, ipc):
    r = get(pages_server, "/", ipc=ipc)
    assert r.status_code == 400
    assert "IPC must be a whole number" in r.text


def test_filter_values_are_escaped(pages_server):
    r = get(pages_server, "/", dataset='"><script>x()</script>')
    assert r.status_code == 200
    assert "<script>x()" not in r.text and "&lt;script&gt;x()" in r.text


def test_artifact_page_shows_facts_versions_tags_results_and_card(pages_server):
    r = get(pages_server, "/lab/cifar-dc")
    assert r.status_code == 200
    text = r.text
    assert 'id="versions"' in text and "v1</a>" in text and "v2</a>" in text
    assert ">paper</span>" in text and ">latest</span>" in text
    assert "dc-noaug@0123456789ab" in text and "44.67 ± 0.45" in text and "+18.67" in text
    assert 'id="grid"' in text and "/lab/cifar-dc/grid/" in text
    assert "dcreg pull lab/cifar-dc@v2" in text
    assert 'href="https://example.org/res.pt"' in text
    # the card was rendered from Markdown: headings and the results table are HTML
    assert "<h2>" in text and "<table>" in text


def test_artifact_page_escapes_hostile_metadata(pages_server):
    text = get(pages_server, "/lab/cifar-dc").text
    assert HOSTILE not in text
    assert "<script>window.__pwned" not in text and 'onerror="window' not in text
    assert "&lt;script&gt;window.__pwned" in text
    assert 'href="javascript:' not in text
    assert 'href="https://openreview.net/forum?id=mSAKhLYLSsl"' in text


def test_older_version_and_tag_selection(pages_server):
    v1 = get(pages_server, "/lab/cifar-dc", rev="v1")
    assert v1.status_code == 200 and "v1 <span" not in v1.text
    assert '<span class="muted">v1</span>' in v1.text and 'id="no-results"' in v1.text
    tagged = get(pages_server, "/lab/cifar-dc", rev="paper")
    assert '<span class="muted">v2</span>' in tagged.text


@pytest.mark.parametrize(
    "path,params,status",
    [
        ("/lab/nothing", {}, 404),
        ("/lab/cifar-dc", {"rev": "v9"}, 404),
        ("/lab/cifar-dc", {"rev": "no-such-tag"}, 404),
        ("/Lab/UPPER", {}, 400),
        ("/lab/cifar-dc", {"rev": "../../etc"}, 400),
        ("/api/datasets", {}, 404),
    ],
)
def test_missing_or_malformed_refs_get_error_pages(pages_server, path, params, status):
    r = get(pages_server, path, **params)
    assert r.status_code == status, r.text
    assert 'role="alert"' in r.text and "Traceback" not in r.text


def test_grid_png_is_generated_once_and_cached_by_digest(pages_server, page_store):
    info = page_store.resolve("lab/cifar-dc@v2")
    path = f"/lab/cifar-dc/grid/{info.digest[7:]}.png"
    first = get(pages_server, path)
    assert first.status_code == 200 and first.headers["content-type"] == "image/png"
    assert "immutable" in first.headers["cache-control"]
    img = Image.open(io.BytesIO(first.content))
    img.load()
    # 10 classes, 2 images each, 32 px tiles + 2 px padding per row
    assert img.height == 10 * (32 + 2) + 2
    assert img.width > 2 * 32
    misses = pages_server.cache.misses
    second = get(pages_server, path)
    assert second.content == first.content
    assert pages_server.cache.misses == misses and pages_server.cache.hits >= 1
    not_modified = httpx.get(
        pages_server.base_url + path, timeout=30, headers={"If-None-Match": first.headers["etag"]}
    )
    assert not_modified.status_code == 304


def test_grid_of_another_names_digest_or_garbage_is_404(pages_server, page_store):
    digits = page_store.resolve("lab/digits-random")
    assert get(pages_server, f"/lab/cifar-dc/grid/{digits.digest[7:]}.png").status_code == 404
    assert get(pages_server, "/lab/cifar-dc/grid/zz.png").status_code == 404
    assert get(pages_server, "/lab/cifar-dc/grid/" + "0" * 64 + ".png").status_code == 404


def test_empty_store_index(tmp_path):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from dcregistry.server.pages import pages_router
    from dcregistry.store import LocalStore

    app = FastAPI()
    app.include_router(pages_router(LocalStore(tmp_path / "empty")))
    r = TestClient(app).get("/")
    assert r.status_code == 200 and "the store is empty" in r.text


def test_grid_png_for_soft_labels_and_zca_without_tensors(tmp_path):
    """Soft labels are grouped by argmax; ZCA pixels without stored tensors are min-max shown."""
    import numpy as np

    from dcregistry.artifact import build_artifact
    from dcregistry.catalog import get_dataset_info
    from dcregistry.server.pages import grid_png

    info = get_dataset_info("cifar10")
    rng = np.random.default_rng(0)
    soft = np.eye(10, dtype=np.float32)[np.repeat(np.arange(10), 3)] * 5
    art = build_artifact(
        tmp_path / "zca",
        {"images": rng.standard_normal((30, 3, 32, 32)).astype(np.float32), "soft_labels": soft},
        {
            "dataset": "cifar10",
            "image_shape": [3, 32, 32],
            "ipc": 3,
            "method": "datm",
            "method_config": {"soft_labels": "logits"},
            "label_kind": "soft",
            "seed": 0,
            "license": "mit",
            "pixel_space": {
                "kind": "zca",
                "variant": "kornia-eps0.1",
                "transform": {"source": "fit", "split": "train"},
                "then": {"kind": "normalized", "mean": list(info.mean), "std": list(info.std)},
            },
        },
    )
    png = grid_png(art, per_class=2)
    img = Image.open(io.BytesIO(png))
    assert img.height == 10 * (32 + 2) + 2
    assert img.width < 400  # 2 tiles per class, not 3


def test_pages_work_with_a_store_without_card_or_annotations(page_store):
    """A minimal store (resolve, list, open) still gets full pages: the card is rendered here."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from dcregistry.server.pages import pages_router

    class Minimal:
        def __init__(self, inner):
            self.resolve, self.list, self.open = inner.resolve, inner.list, inner.open

    app = FastAPI()
    app.include_router(pages_router(Minimal(page_store)))
    r = TestClient(app).get("/lab/cifar-dc")
    assert r.status_code == 200 and "<h2>" in r.text and 'id="no-results"' in r.text
