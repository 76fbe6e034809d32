"""``/leaderboard`` in process (FastAPI's TestClient): the site is built once, rebuilt only when
a results file changes, served from memory (no path reaches the file system), with the CSP."""

from __future__ import annotations

from ..registry.leaderboard_helpers import P_NOAUG, cell_json, make_results, write_cell


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
