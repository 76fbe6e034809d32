"""``dcreg serve``'s ``/leaderboard/`` over the results repos it hosts, fed by ``harness results
push`` against a real server on 127.0.0.1: empty at first (a 200 page saying how to push), each
push on the very next page asked for, hostile strings as text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.registry.leaderboard_helpers import HOSTILE, P_DSA, P_NOAUG, cell_json, make_results, write_cell
from tests.server.conftest import TOKEN, Server, start_server

from .cli_helpers import run_harness


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Server, dict[str, str]]]:
    _, store, digests = make_results(tmp_path)  # the store holds the sets; no --results DIR
    (tmp_path / "token").write_text(TOKEN)
    srv = start_server(store, tmp_path / "token", tmp_path / "server.log")
    monkeypatch.setenv("DCREG_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    try:
        yield srv, digests
    finally:
        srv.proc.terminate()
        srv.proc.wait(timeout=10)


def push(results: Path, target: str, capsys) -> None:
    code, out, err = run_harness(["results", "push", results, "--to", target], capsys)
    assert code == 0, (out, err)


def test_serve_shows_pushed_records_at_leaderboard(served, tmp_path: Path, capsys) -> None:
    srv, digests = served
    r = httpx.get(f"{srv.url}/leaderboard/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "No result records yet" in r.text and "harness results push RESULTS_DIR --to" in r.text

    results = tmp_path / "sweep"
    herding = digests["lab/digits-herding-ipc5"]
    write_cell(
        results, cell_json(digest=herding, ref=None, method=HOSTILE, ipc=5, pid=P_NOAUG, seed=0, acc=0.8)
    )
    push(results, f"{srv.url}/lab/results", capsys)
    index = httpx.get(f"{srv.url}/leaderboard/").text  # at once: no waiting for a re-check
    assert "No result records yet" not in index and "results repo lab/results" in index
    assert 'href="d/digits.html"' in index
    page = httpx.get(f"{srv.url}/leaderboard/d/digits.html").text
    assert 'data-sort="0.8">80.00 ± 0.00</td>' in page
    assert HOSTILE not in page and "<script>window" not in page
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;&quot;&#39;&gt;&lt;img" in page

    # another record under another protocol: its own table, never averaged with the first
    write_cell(
        results, cell_json(digest=herding, ref=None, method=HOSTILE, ipc=5, pid=P_DSA, seed=0, acc=0.9)
    )
    push(results, f"{srv.url}/lab/results", capsys)
    page = httpx.get(f"{srv.url}/leaderboard/d/digits.html").text
    assert page.count('<table class="sortable"') == 2
    assert 'data-sort="0.9">90.00 ± 0.00</td>' in page and 'data-sort="0.8">80.00 ± 0.00</td>' in page
    assert f"{P_DSA}</code>" in page and "85.00" not in page
    art = httpx.get(f"{srv.url}/leaderboard/a/{herding[7:]}.html")
    assert art.status_code == 200 and "lab/digits-herding-ipc5@v1" in art.text  # the store's name
