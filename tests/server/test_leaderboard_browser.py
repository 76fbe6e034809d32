"""The leaderboard site in a real headless Chromium (Debian's ``chromium`` through Playwright's
executable path, as test_pages_browser.py): the static site from ``dcreg leaderboard`` served by
a plain file server, and ``/leaderboard`` of a real ``dcreg serve`` on 127.0.0.1 built from a
results directory and a results repo. Tables render and sort on a header click, every image
decodes, every link of every page resolves, hostile names and cards show as text and run
nothing. Skips only when no browser can be found."""

from __future__ import annotations

import base64
import functools
import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlsplit

import httpx
import pytest

from dcregistry.results import record_bytes

from ..registry.leaderboard_helpers import HOSTILE, P_NOAUG, cell_json, make_results, table_json
from .conftest import TOKEN, start_server
from .pages_helpers import find_chromium

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium/Chrome executable found (install Debian's `chromium`, or set "
    "DCREG_CHROMIUM to a browser binary); the leaderboard's HTML-level tests still ran",
)
SHOWN_HOSTILE = HOSTILE.replace("\x07", "\\x07")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return make_results(tmp_path_factory.mktemp("lbb"))


@pytest.fixture(scope="module")
def static_site(made, tmp_path_factory) -> Iterator[str]:
    """``dcreg leaderboard`` output served by Python's file server on 127.0.0.1."""
    from dcregistry.cli import main

    results, store, digests = made
    # a copy of the results with a rendered paper table whose texts are hostile
    copy = tmp_path_factory.mktemp("lbb-table") / "results"
    shutil.copytree(results, copy)
    digest = digests["lab/digits-random-ipc1"]
    (copy / "dc-demo.json").write_text(
        json.dumps(table_json(title=HOSTILE, digest=digest, findings=[HOSTILE]))
    )
    (copy / "dc-demo.png").write_bytes((COMMITTED / "dc-cross-arch.png").read_bytes())
    out = tmp_path_factory.mktemp("site")
    with pytest.raises(SystemExit) as exc:
        main(["leaderboard", str(copy), "--store", str(store), "-o", str(out)])
    assert exc.value.code == 0

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(out)))
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/"
    finally:
        srv.shutdown()
        srv.server_close()


def crawl(browser, start: str) -> dict[str, object]:
    """Visit every same-origin HTML page reachable from ``start``; check each page's images
    decoded, that no script of a record or card ran, and that every link and image answers 200.
    Returns url -> the page's problems (console errors, failed requests: must be none)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    # a request the next navigation cancels (the favicon, under load) is aborted, not failed:
    # every link and asset is fetched and checked for 200 below anyway
    page.on(
        "requestfailed",
        lambda r: (
            problems.append(f"failed: {r.url} ({r.failure})") if r.failure != "net::ERR_ABORTED" else None
        ),
    )
    page.on("response", lambda r: problems.append(f"{r.status}: {r.url}") if r.status >= 400 else None)
    origin = urlsplit(start).netloc
    todo, seen, checked, visited = [start], set(), set(), {}
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        seen.add(url)
        page.goto(url)
        page.wait_for_load_state("load")
        assert page.evaluate("window.__pwned === undefined"), url
        sizes = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.src])")
        assert all(done and w > 0 for done, w, _ in sizes), (url, sizes)
        links = page.evaluate(
            "Array.from(document.querySelectorAll('a[href], img[src], link[href], script[src]'))"
            ".map(e => e.href || e.src)"
        )
        for link in links:
            link = urldefrag(urljoin(page.url, link))[0]
            if urlsplit(link).netloc != origin:
                continue  # a card's link to a paper: not ours to resolve
            if link.endswith(".html") or link.endswith("/"):
                todo.append(link)
            elif link not in checked:
                checked.add(link)
                assert page.request.get(link).status == 200, (url, link)
        visited[url] = page.title()
    page.close()
    assert problems == [], problems
    assert len(visited) >= 7, visited  # index, the dataset page, five artifact pages
    return visited


def test_static_site_renders_sorts_and_every_link_resolves(browser, static_site, made):
    crawl(browser, static_site + "index.html")

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(static_site + "d/digits.html")
    assert page.locator("table.sortable").count() == 3
    assert page.locator("svg.plot").count() == 2
    table = page.locator("#table-2")  # IPC 5, dc-noaug: 81, 72, 61 as built

    def column(i: int) -> list[str]:
        return table.locator(f"tbody tr td:nth-child({i})").all_inner_texts()

    assert [x.split()[0] for x in column(4)] == ["81.00", "72.00", "61.00"]
    table.locator("th", has_text="accuracy").click()
    assert [x.split()[0] for x in column(4)] == ["61.00", "72.00", "81.00"]
    assert table.locator("th", has_text="accuracy").get_attribute("aria-sort") == "ascending"
    table.locator("th", has_text="accuracy").click()
    assert [x.split()[0] for x in column(4)] == ["81.00", "72.00", "61.00"]
    table.locator("th", has_text="method").click()
    assert column(1) == sorted(column(1)) and column(1)[0] == SHOWN_HOSTILE
    table.locator("th", has_text="condensation time").click()  # the unreachable set's '–' sorts last
    assert column(6)[-1] == "–" and column(6)[:2] == ["14.5 s", "15.5 s"]

    # the hostile method name and card text are text on the page, and nothing ran
    assert SHOWN_HOSTILE in page.locator("#ipc5").inner_text()
    assert page.evaluate("window.__pwned === undefined")
    first = page.locator("#table-2 tbody tr").first.locator("a")
    first.click()
    page.wait_for_load_state("load")
    assert "/a/" in page.url
    card = page.locator("#card")
    assert "<script>window.__pwned=1</script>" in card.inner_text()
    assert page.locator("#card a[href^='javascript:']").count() == 0
    assert page.evaluate("document.getElementById('grid').naturalWidth") > 0
    assert page.evaluate("window.__pwned === undefined")

    # the paper table: reached from the index, its hostile title and findings are text
    page.goto(static_site + "index.html")
    page.locator("#paper-tables a", has_text="dc-demo").click()
    page.wait_for_load_state("load")
    assert page.locator("h1").inner_text() == SHOWN_HOSTILE
    assert [r.inner_text() for r in page.locator("#paper-table tbody th").all()] == ["1", "10"]
    assert "(paper 91.7, Δ -1.7)" in page.locator("#paper-table").inner_text()
    assert page.evaluate("document.getElementById('plot').naturalWidth") > 0
    assert page.evaluate("window.__pwned === undefined")
    page.locator("#paper-table a").first.click()  # the cell's set
    page.wait_for_load_state("load")
    assert page.url.endswith(f"/a/{made[2]['lab/digits-random-ipc1'].removeprefix('sha256:')}.html")
    page.close()


def test_dcreg_serve_leaderboard_from_a_results_dir_and_a_results_repo(browser, made, tmp_path):
    results, store, digests = made
    (tmp_path / "token").write_text(TOKEN)
    srv = start_server(
        store,
        tmp_path / "token",
        tmp_path / "server.log",
        ["--results", str(results), "--results-repo", "lab/results"],
    )
    try:
        digest = digests["lab/digits-random-ipc1"]
        rec = cell_json(
            digest=digest,
            ref="lab/digits-random-ipc1@v1",
            method="random",
            ipc=1,
            pid=P_NOAUG,
            seed=3,
            acc=0.46,
        )
        path = f"digits/ipc1/{digest[7:]}/{P_NOAUG}/seed3.json"
        body = b"".join(
            json.dumps(x).encode() + b"\n"
            for x in (
                {"key": "header", "value": {"summary": "one record"}},
                {
                    "key": "file",
                    "value": {
                        "path": path,
                        "content": base64.b64encode(record_bytes(rec)).decode(),
                        "encoding": "base64",
                    },
                },
            )
        )
        res = httpx.post(
            f"{srv.url}/api/datasets/lab/results/commit/main",
            content=body,
            headers={"Content-Type": "application/x-ndjson", "Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
        assert res.status_code == 200, res.text

        r = httpx.get(f"{srv.url}/leaderboard")
        assert r.status_code == 307 and r.headers["location"] == "/leaderboard/"
        r = httpx.get(f"{srv.url}/leaderboard/")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "results repo lab/results" in r.text
        assert httpx.get(f"{srv.url}/leaderboard/nope.html").status_code == 404

        crawl(browser, f"{srv.url}/leaderboard")

        # the same results read remotely: the repo over the Hub API, the store as a Hub store
        from dcregistry.leaderboard import build_site
        from dcregistry.leaderboard.remote import ResultsRepoSource

        remote = build_site([ResultsRepoSource(f"{srv.url}/lab/results")], srv.url)
        assert [r.runs for r in remote.collection.rows.values()] == [1]
        assert f"a/{digest[7:]}.png" in remote.files and f"a/{digest[7:]}.md" in remote.files
        page = browser.new_page()
        page.goto(f"{srv.url}/leaderboard/d/digits.html")
        row = page.locator("#table-0 tbody tr", has_text="random")
        assert row.locator("td:nth-child(5)").inner_text() == "4"  # 3 seeds from the dir + 1 from the repo
        page.close()
    finally:
        srv.proc.terminate()
        srv.proc.wait(timeout=10)


def test_dcreg_serve_leaderboard_starts_empty_and_shows_a_push_on_reload(browser, made, tmp_path):
    """No --results and no record: /leaderboard/ is a page saying how to push; a record
    committed to a results repo is there on the next reload, its hostile method as text."""
    digests = made[2]
    (tmp_path / "token").write_text(TOKEN)
    home = tmp_path / "home"
    home.mkdir()
    srv = start_server(home, tmp_path / "token", tmp_path / "server.log")
    try:
        page = browser.new_page()
        page.goto(f"{srv.url}/leaderboard/")
        assert page.locator("#empty").is_visible()
        assert "harness results push" in page.locator("#empty").inner_text()
        assert page.locator("#datasets").count() == 0

        digest = digests["lab/digits-herding-ipc5"]
        rec = cell_json(digest=digest, ref=None, method=HOSTILE, ipc=5, pid=P_NOAUG, seed=0, acc=0.8)
        path = f"digits/ipc5/{digest[7:]}/{P_NOAUG}/seed0.json"
        lines = [
            {"key": "header", "value": {"summary": "one record"}},
            {
                "key": "file",
                "value": {
                    "path": path,
                    "content": base64.b64encode(record_bytes(rec)).decode(),
                    "encoding": "base64",
                },
            },
        ]
        headers = {"Authorization": f"Bearer {TOKEN}"}
        assert (
            httpx.post(
                f"{srv.url}/api/repos/create", json={"type": "dataset", "name": "lab/r"}, headers=headers
            ).status_code
            == 200
        )
        res = httpx.post(
            f"{srv.url}/api/datasets/lab/r/commit/main",
            content=b"".join(json.dumps(x).encode() + b"\n" for x in lines),
            headers={"Content-Type": "application/x-ndjson", **headers},
            timeout=30,
        )
        assert res.status_code == 200, res.text

        page.reload()
        assert page.locator("#empty").count() == 0
        page.locator("#datasets a", has_text="digits").click()
        page.wait_for_load_state("load")
        cell = page.locator("#table-0 tbody tr td:nth-child(1)")
        assert cell.inner_text() == SHOWN_HOSTILE
        assert page.evaluate("window.__pwned === undefined")
        page.close()
    finally:
        srv.proc.terminate()
        srv.proc.wait(timeout=10)


COMMITTED = Path(__file__).resolve().parents[2] / "results" / "tables"


@pytest.mark.skipif(not (COMMITTED / "digits").is_dir(), reason="no committed table results")
def test_the_leaderboard_of_the_committed_quick_tables(browser, tmp_path, monkeypatch):
    """The README's leaderboard: `dcreg leaderboard` over the committed results/tables (the sets
    themselves are not committed: an empty store, so the set pages say where they were)."""
    from dcregistry.cli import main

    monkeypatch.setenv("DCREG_HOME", str(tmp_path / "empty-store"))
    out = tmp_path / "site"
    with pytest.raises(SystemExit) as exc:
        main(
            ["leaderboard", "--results", str(COMMITTED), "-o", str(out), "--title", "dcregistry quick tables"]
        )
    assert exc.value.code == 0

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(out)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{srv.server_address[1]}/"
        crawl(browser, base + "index.html")
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(base + "d/digits.html")
        tables = page.locator("table.sortable")
        assert tables.count() >= 4  # IPC 1 and 10, each under several protocols, never mixed
        text = page.locator("body").inner_text()
        for method in ("random", "kcenter", "dc", "dsa", "dm", "mtt"):
            assert f"\n{method}" in text or f"{method}\t" in text, method
        t = tables.first
        header = t.locator("th", has_text="accuracy")
        header.click()
        accs = [float(x.split()[0]) for x in t.locator("tbody tr td:nth-child(4)").all_inner_texts()]
        assert accs == sorted(accs) and len(accs) >= 2
        assert page.locator("svg.plot").count() >= 1
        # the sets are not committed, their grids are (results/tables/grids): one per method
        assert page.locator("#samples-ipc1 img").count() >= 8
        assert page.evaluate("Array.from(document.images).every(i => i.naturalWidth > 0)")
        # the committed tables in the paper's layout, each with its plot
        page.goto(base + "t/dc-cross-arch.html")
        assert page.locator("#paper-table tbody tr").count() == 6
        assert page.locator("#paper-table thead th").count() == 7
        assert page.evaluate("document.getElementById('plot').naturalWidth") > 0
        page.goto(base + "index.html")
        shown = page.locator("#paper-tables tbody tr td:first-child").all_inner_texts()
        assert {"dc-coreset", "dcbench-aug", "dc-cross-arch", "dc-depth"} <= set(shown)
        page.close()
    finally:
        srv.shutdown()
        srv.server_close()
