"""``/leaderboard`` in process (FastAPI's TestClient): the site is built once, rebuilt only when
a results file changes, served from memory (no path reaches the file system), with the CSP."""

from __future__ import annotations

from ..registry.leaderboard_helpers import HOSTILE, P_NOAUG, cell_json, make_results, write_cell


def test_leaderboard_route_builds_once_and_rebuilds_on_change(tmp_path):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from dcregistry.server.leaderboard_routes import leaderboard_router
    from dcregistry.store import LocalStore

    results, store, digests = make_results(tmp_path)
    router = leaderboard_router(LocalStore(store), None, [results], check_seconds=0)
    app = FastAPI()
    app.include_router(router)
    cache = router.leaderboard_cache
    with TestClient(app) as client:
        r = client.get("/leaderboard/", follow_redirects=False)
        assert r.status_code == 200 and "default-src 'none'" in r.headers["content-security-policy"]
        assert client.get("/leaderboard/index.html").text == r.text and cache.builds == 1
        assert client.get("/leaderboard/sort.js").headers["content-type"].startswith("text/javascript")
        hexd = digests["lab/digits-random-ipc1"][7:]
        assert client.get(f"/leaderboard/a/{hexd}.png").headers["content-type"] == "image/png"
        for bad in (
            "/leaderboard/../../etc/passwd",
            "/leaderboard/%2e%2e/%2e%2e/etc/passwd",
            "/leaderboard/d/",
        ):
            assert client.get(bad).status_code == 404, bad
        assert cache.builds == 1

        digest = digests["lab/digits-random-ipc1"]
        rec = cell_json(digest=digest, ref=None, method="random", ipc=1, pid=P_NOAUG, seed=9, acc=0.5)
        write_cell(results, rec)
        page = client.get("/leaderboard/d/digits.html").text
        assert cache.builds == 2
        assert '<td class="num" data-sort="4.0">4</td>' in page


def _commit(client, repo: str, records: list[dict]) -> str:
    """Commit ``records`` (cell JSON) to ``repo`` over the Hub API; the new head."""
    import base64
    import json

    from dcregistry.results import record_bytes

    from .conftest import TOKEN

    lines = [{"key": "header", "value": {"summary": "records"}}]
    for d in records:
        a = d["artifact"]
        path = f"{a['dataset']}/ipc{a['ipc']}/{a['digest'][7:]}/{d['cell']['protocol']}/seed{d['cell']['seed']}.json"
        content = base64.b64encode(record_bytes(d)).decode()
        lines.append({"key": "file", "value": {"path": path, "content": content, "encoding": "base64"}})
    r = client.post(
        f"/api/datasets/{repo}/commit/main",
        content=b"".join(json.dumps(x).encode() + b"\n" for x in lines),
        headers={"Content-Type": "application/x-ndjson", "Authorization": f"Bearer {TOKEN}"},
    )
    assert r.status_code == 200, r.text
    return r.json()["commitOid"]


def test_served_leaderboard_follows_the_results_repos_heads(tmp_path):
    """The app of ``dcreg serve`` with no --results: /leaderboard/ is the results repos' records,
    rebuilt on the first request after a push (not throttled: the heads are the key) and not
    otherwise; an empty server says how to push; a damaged blob is a listed problem, not a 500."""
    from fastapi.testclient import TestClient

    from dcregistry.server import create_app

    from .conftest import TOKEN

    results, store, digests = make_results(tmp_path)
    app = create_app(store, TOKEN, public_url="http://lb.example:8008", results_repos=["lab/results"])
    cache = app.state.leaderboard
    assert cache.check_seconds >= 1  # the default: a push must show without waiting for it
    with TestClient(app, base_url="http://127.0.0.1") as client:
        r = client.get("/leaderboard/")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert 'id="empty"' in r.text and "No result records yet" in r.text
        assert "harness results push RESULTS_DIR --to http://lb.example:8008/lab/results" in r.text
        assert "results repo lab/results" in r.text
        assert client.get("/leaderboard/d/digits.html").status_code == 404
        assert cache.builds == 1

        herding = digests["lab/digits-herding-ipc5"]
        hostile = cell_json(digest=herding, ref=None, method=HOSTILE, ipc=5, pid=P_NOAUG, seed=0, acc=0.8)
        _commit(client, "lab/results", [hostile])
        page = client.get("/leaderboard/d/digits.html")
        assert page.status_code == 200 and cache.builds == 2
        assert HOSTILE not in page.text and "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page.text
        assert "<script>window" not in page.text and "\\x07" in page.text
        assert 'data-sort="0.8">80.00 ± 0.00</td>' in page.text
        for _ in range(3):
            assert client.get("/leaderboard/d/digits.html").text == page.text
        index = client.get("/leaderboard/").text
        client.get("/leaderboard/sort.js")
        assert cache.builds == 2  # nothing moved: no rebuild

        # another record, another repo (a repo becomes a results repo by its first commit)
        random1 = digests["lab/digits-random-ipc1"]
        rec = cell_json(
            digest=random1,
            ref="lab/digits-random-ipc1@v1",
            method="random",
            ipc=1,
            pid=P_NOAUG,
            seed=4,
            acc=0.45,
        )
        r = client.post(
            "/api/repos/create",
            json={"type": "dataset", "name": "lab/more"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert r.status_code == 200, r.text
        assert client.get("/leaderboard/").text == index and cache.builds == 2  # not a results repo yet
        _commit(client, "lab/more", [rec])
        index = client.get("/leaderboard/").text
        assert cache.builds == 3 and 'id="empty"' not in index
        assert "results repo lab/more" in index and "results repo lab/results" in index
        page = client.get("/leaderboard/d/digits.html").text
        assert 'data-sort="0.45">45.00 ± 0.00</td>' in page and "80.00 ± 0.00" in page

        # a blob damaged on disk (the server's own store): listed as a problem, no path shown
        hub = store / "hub"
        blobs = [
            p for p in (hub / "blobs").iterdir() if b"herding" in p.read_bytes() or b"pwned" in p.read_bytes()
        ]
        assert blobs
        for p in blobs:
            p.chmod(0o644)
            p.write_bytes(b'{"kind": "dcreg-eval/1", "nested": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
        rec2 = cell_json(digest=random1, ref=None, method="random", ipc=1, pid=P_NOAUG, seed=5, acc=0.47)
        _commit(client, "lab/more", [rec2])
        r = client.get("/leaderboard/")
        assert r.status_code == 200 and cache.builds == 4 and cache.failures == 0
        assert 'id="problems"' in r.text and str(tmp_path) not in r.text
        page = client.get("/leaderboard/d/digits.html").text
        assert "nests 100001 levels deep" in r.text and "results repo lab/results" in r.text
        assert "80.00" not in page and "46.00 ± 1.00" in page  # seeds 4 and 5 of one set


def test_a_failed_build_keeps_the_last_site_and_is_not_retried_per_request(tmp_path, monkeypatch):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from dcregistry.server import leaderboard_routes
    from dcregistry.server.leaderboard_routes import leaderboard_router
    from dcregistry.store import LocalStore

    results, store, digests = make_results(tmp_path)
    router = leaderboard_router(LocalStore(store), None, [results], check_seconds=0)
    cache = router.leaderboard_cache
    app = FastAPI()
    app.include_router(router)
    real = leaderboard_routes.build_site

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    def add_cell(seed):
        digest = digests["lab/digits-random-ipc1"]
        cell = cell_json(digest=digest, ref=None, method="random", ipc=1, pid=P_NOAUG, seed=seed, acc=0.5)
        write_cell(results, cell)

    with TestClient(app) as client:
        monkeypatch.setattr(leaderboard_routes, "build_site", broken)
        r = client.get("/leaderboard/")
        assert r.status_code == 503 and "could not be built" in r.text and "a bug" not in r.text
        assert client.get("/leaderboard/").status_code == 503 and cache.failures == 1  # same key: no retry
        add_cell(7)  # the results changed: a new key
        monkeypatch.setattr(leaderboard_routes, "build_site", real)
        good = client.get("/leaderboard/")
        assert good.status_code == 200 and cache.builds == 1
        monkeypatch.setattr(leaderboard_routes, "build_site", broken)
        add_cell(8)
        assert client.get("/leaderboard/").text == good.text and cache.failures == 2
