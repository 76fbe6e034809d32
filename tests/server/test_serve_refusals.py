"""What `dcreg serve` refuses: traversal paths, commits that are not dcreg/1 artifacts, stale
parents, bad tokens, a client killed mid-upload; and that nothing changes when it does."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import time
from pathlib import Path

import httpx
import pytest

from dcregistry.server.backend import empty_oid
from dcregistry.store.hub import HubStore

from .conftest import Server, start_server, store_state

AUTH = {"Authorization": "Bearer test-token-5f2c9a"}


def _commit(
    server: Server, repo: str, lines: list[dict], headers: dict | None = None, parent: str | None = None
) -> httpx.Response:
    header = {"summary": "test", "description": ""}
    if parent:
        header["parentCommit"] = parent
    body = b"".join(json.dumps(x).encode() + b"\n" for x in [{"key": "header", "value": header}, *lines])
    return httpx.post(
        f"{server.url}/api/datasets/{repo}/commit/main",
        content=body,
        headers={"Content-Type": "application/x-ndjson", **(AUTH if headers is None else headers)},
    )


def _inline(path: str, data: bytes) -> dict:
    return {
        "key": "file",
        "value": {"path": path, "encoding": "base64", "content": base64.b64encode(data).decode()},
    }


def _create(server: Server, repo: str) -> None:
    ns, name = repo.split("/")
    r = httpx.post(
        f"{server.url}/api/repos/create",
        headers=AUTH,
        json={"name": name, "organization": ns, "type": "dataset"},
    )
    assert r.status_code in (200, 409), r.text


def _artifact_lines(art) -> list[dict]:
    return [
        _inline(f, (art.path / f).read_bytes()) for f in ("manifest.json", "README.md", "data.safetensors")
    ]


@pytest.mark.parametrize(
    "bad", ["../evil.txt", "a/../../evil", "/abs.txt", "a\\b.txt", ".hidden", "a//b", "x\n.txt", "ok/./x"]
)
def test_traversal_file_names_are_refused(server: Server, make_artifact, bad: str) -> None:
    _create(server, "lab/paths")
    before = store_state(server.home)
    art = make_artifact(seed=20)
    r = _commit(server, "lab/paths", [*_artifact_lines(art), _inline(bad, b"pwned")])
    assert r.status_code == 400 and "refused file path" in r.json()["error"]
    assert store_state(server.home) == before
    assert not list(server.home.parent.rglob("evil*"))


def test_commit_that_is_not_a_valid_artifact_changes_nothing(server: Server, make_artifact) -> None:
    _create(server, "lab/invalid")
    art = make_artifact(seed=21)
    before = store_state(server.home)
    good = _artifact_lines(art)
    cases = {
        "no manifest.json": good[1:],
        "lists data.safetensors but": [good[0], good[1]],
        "README.md has sha256": [good[0], _inline("README.md", b"changed"), good[2]],
        "not valid JSON": [_inline("manifest.json", b"{"), *good[1:]],
    }
    for why, lines in cases.items():
        r = _commit(server, "lab/invalid", lines)
        assert r.status_code == 422, (why, r.text)
        assert "does not form a valid dcreg/1 artifact" in r.json()["error"] and why in r.json()["error"]
    # a manifest that matches its files but whose tensors break the contract: the store's checks
    manifest = json.loads((art.path / "manifest.json").read_text())
    manifest["metadata"]["ipc"] = 3
    r = _commit(server, "lab/invalid", [_inline("manifest.json", json.dumps(manifest).encode()), *good[1:]])
    assert r.status_code == 422 and "metadata" in r.json()["error"]
    assert store_state(server.home) == before
    # the same commit, valid, is accepted
    r = _commit(server, "lab/invalid", good)
    assert r.status_code == 200 and len(r.json()["commitOid"]) == 40


def test_stale_parent_commit_gets_412(server: Server, make_artifact) -> None:
    _create(server, "lab/parent")
    a, b = make_artifact(seed=22), make_artifact(seed=23)
    r = _commit(server, "lab/parent", _artifact_lines(a), parent=empty_oid("lab/parent"))
    assert r.status_code == 200
    before = store_state(server.home)
    r = _commit(server, "lab/parent", _artifact_lines(b), parent=empty_oid("lab/parent"))
    assert r.status_code == 412 and "parentCommit" in r.json()["error"]
    assert store_state(server.home) == before


def test_hub_store_retries_when_another_push_wins(
    server: Server, client_env: Path, make_artifact, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = make_artifact(seed=24), make_artifact(seed=25)
    store = HubStore(server.url)
    store.push(first.path, "lab/retry")
    real_refs = HubStore._refs
    calls = {"n": 0}

    def stale_once(self, repo):  # the first look sees the repo as it was before `first`
        versions, tags, head = real_refs(self, repo)
        calls["n"] += 1
        if calls["n"] == 1:
            return {}, {}, empty_oid(repo)
        return versions, tags, head

    monkeypatch.setattr(HubStore, "_refs", stale_once)
    res = store.push(second.path, "lab/retry")
    assert (res.version, res.created, res.digest) == (2, True, second.digest)
    assert calls["n"] >= 3  # stale view, 412, fresh view


def test_writes_need_the_token_and_reads_do_not(server: Server, make_artifact) -> None:
    before = store_state(server.home)
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic dGVzdA=="}):
        r = httpx.post(
            f"{server.url}/api/repos/create",
            headers=headers,
            json={"name": "x", "organization": "lab", "type": "dataset"},
        )
        assert r.status_code == 401 and "nope" not in r.text
        r = _commit(server, "lab/invalid", [], headers=headers)
        assert r.status_code == 401
    assert store_state(server.home) == before
    assert httpx.get(f"{server.url}/api/datasets").status_code == 200


def test_read_only_server_refuses_every_write(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "home", None, tmp_path / "log")
    try:
        r = httpx.post(
            f"{srv.url}/api/repos/create",
            headers=AUTH,
            json={"name": "x", "organization": "lab", "type": "dataset"},
        )
        assert r.status_code == 403 and "read-only" in r.json()["error"]
        assert httpx.get(f"{srv.url}/api/datasets").json() == []
    finally:
        srv.proc.terminate()
        srv.proc.wait(timeout=10)


def test_client_killed_mid_upload_leaves_nothing_visible(server: Server, make_artifact) -> None:
    _create(server, "lab/killed")
    art = make_artifact(seed=26)
    data = (art.path / "data.safetensors").read_bytes()
    oid = hashlib.sha256(data).hexdigest()
    batch = httpx.post(
        f"{server.url}/datasets/lab/killed.git/info/lfs/objects/batch",
        headers={**AUTH, "Content-Type": "application/vnd.git-lfs+json"},
        json={
            "operation": "upload",
            "transfers": ["basic"],
            "hash_algo": "sha256",
            "objects": [{"oid": oid, "size": len(data)}],
        },
    ).json()
    href = batch["objects"][0]["actions"]["upload"]["href"]
    before = store_state(server.home)
    # a raw socket: send the headers and half of the body, then vanish (as a SIGKILL would)
    target = httpx.URL(href)
    with socket.create_connection((target.host, target.port)) as sock:
        path = target.raw_path.decode()
        sock.sendall(
            f"PUT {path} HTTP/1.1\r\nHost: {target.host}\r\nContent-Length: {len(data)}\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n".encode()
            + data[: len(data) // 2]
        )
        time.sleep(0.3)
    time.sleep(0.5)
    tmp = server.home / "hub" / "tmp"
    assert not [p for p in tmp.iterdir() if p.name.endswith(".upload")]
    assert not (server.home / "hub" / "lfs" / oid).exists()
    # committing the object that never finished is refused; nothing appeared
    r = _commit(
        server,
        "lab/killed",
        [
            _inline("manifest.json", (art.path / "manifest.json").read_bytes()),
            _inline("README.md", (art.path / "README.md").read_bytes()),
            {
                "key": "lfsFile",
                "value": {"path": "data.safetensors", "algo": "sha256", "oid": oid, "size": len(data)},
            },
        ],
    )
    assert r.status_code == 400 and "was not uploaded" in r.json()["error"]
    assert store_state(server.home) == before
    assert server.store().list(name="lab/killed") == []
    # an upload whose bytes do not hash to the declared oid is refused too
    bad = httpx.put(href, content=b"x" * len(data))
    assert bad.status_code == 400 and not (server.home / "hub" / "lfs" / oid).exists()
