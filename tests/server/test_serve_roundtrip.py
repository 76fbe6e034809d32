"""`dcreg push/pull --store URL` through a real `dcreg serve`, read back by plain Hub clients."""

from __future__ import annotations

import filecmp
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from dcregistry.artifact import manifest_digest, open_artifact
from dcregistry.errors import IntegrityError, NotFoundError
from dcregistry.store import LocalStore, open_ref
from dcregistry.store.hub import HubStore

from .conftest import Server, dcreg, store_state

ARTIFACT_FILES = ("data.safetensors", "README.md", "manifest.json")


def test_push_then_pull_into_another_home(
    server: Server, client_env: Path, make_artifact, monkeypatch: pytest.MonkeyPatch
) -> None:
    art = make_artifact(seed=1)
    code, out, err = dcreg(
        "push", art.path, "--name", "lab/roundtrip", "--tag", "paper", "--store", server.url
    )
    assert code == 0, err
    assert out.strip() == f"lab/roundtrip@v1 {art.digest}"
    # the same content gives the same digest in a local store
    local = LocalStore(client_env / "local-a").push(art.path, "lab/roundtrip")
    assert local.digest == art.digest

    monkeypatch.setenv("DCREG_HOME", str(client_env / "second-home"))
    monkeypatch.setenv("DCREG_STORE", server.url)  # store chosen by the environment
    code, out, err = dcreg("pull", "lab/roundtrip@paper", "-o", client_env / "pulled")
    assert code == 0, err
    pulled = Path(out.strip())
    for f in ARTIFACT_FILES:
        assert filecmp.cmp(pulled / f, art.path / f, shallow=False), f
    assert open_artifact(pulled).digest == art.digest

    code, out, _ = dcreg("tags", "lab/roundtrip")
    assert code == 0 and "paper" in out and "latest" in out
    code, out, _ = dcreg("list", "--json")
    listed = {row["ref"]: row["digest"] for row in json.loads(out)}
    assert listed.get("lab/roundtrip@v1") == art.digest
    code, out, _ = dcreg("list", "dataset=cifar10", "--json")
    assert code == 0 and "lab/roundtrip@v1" not in out

    # hf:// references work where refs do: open_ref as `harness eval` uses it
    monkeypatch.delenv("DCREG_STORE")
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    assert open_ref("hf://datasets/lab/roundtrip@v1").digest == art.digest


def test_plain_hub_clients_read_what_dcreg_pushed(server: Server, client_env: Path, make_artifact) -> None:
    from huggingface_hub import snapshot_download

    art = make_artifact(seed=2)
    res = HubStore(server.url).push(art.path, "lab/plain")
    assert (res.version, res.created) == (1, True)
    snap = Path(
        snapshot_download(
            "lab/plain",
            repo_type="dataset",
            revision="v1",
            endpoint=server.url,
            cache_dir=client_env / "plain-cache",
        )
    )
    for f in ARTIFACT_FILES:
        assert filecmp.cmp(snap / f, art.path / f, shallow=False), f
    assert (snap / "preview" / "train.parquet").is_file()

    code = (
        "import datasets, sys\n"
        "ds = datasets.load_dataset('lab/plain', revision='v1', split='train', cache_dir=sys.argv[1])\n"
        "print(len(ds), ds.features['label'].names[:2], ds[0]['image'].size, ds[0]['label'])\n"
    )
    env = {
        **os.environ,
        "HF_ENDPOINT": server.url,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HOME": str(client_env / "hf-home"),
    }
    proc = subprocess.run(
        [sys.executable, "-c", code, str(client_env / "ds-cache")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "20 ['0', '1'] (8, 8) 0"


def test_resolve_headers_and_range(server: Server, client_env: Path, make_artifact) -> None:
    art = make_artifact(seed=3)
    HubStore(server.url).push(art.path, "lab/headers")
    url = f"{server.url}/datasets/lab/headers/resolve/v1/data.safetensors"
    data = (art.path / "data.safetensors").read_bytes()
    entry = art.manifest["files"]["data.safetensors"]
    head = httpx.head(url)
    assert head.status_code == 200
    assert head.headers["x-linked-etag"] == f'"{entry["sha256"]}"'
    assert head.headers["etag"] == f'"{entry["sha256"]}"'
    assert int(head.headers["x-linked-size"]) == entry["size"] == int(head.headers["content-length"])
    commit = head.headers["x-repo-commit"]
    assert len(commit) == 40
    part = httpx.get(url.replace("/v1/", f"/{commit}/"), headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]
    assert (
        httpx.get(f"{server.url}/datasets/lab/headers/resolve/v9/README.md").headers["x-error-code"]
        == "RevisionNotFound"
    )
    assert (
        httpx.get(f"{server.url}/datasets/lab/headers/resolve/v1/nope.txt").headers["x-error-code"]
        == "EntryNotFound"
    )


def test_tampered_blob_on_the_server_is_caught(server: Server, client_env: Path, make_artifact) -> None:
    art = make_artifact(seed=4)
    HubStore(server.url).push(art.path, "lab/tamper")
    served = server.store().open("lab/tamper@v1", verify=False).path / "data.safetensors"
    blob = served.resolve()
    os.chmod(blob, 0o644)
    raw = bytearray(blob.read_bytes())
    raw[-1] ^= 0xFF  # same size: only a hash check can tell
    blob.write_bytes(bytes(raw))
    out = client_env / "tampered-out"
    with pytest.raises(IntegrityError, match="data.safetensors.*modified or corrupted"):
        HubStore(server.url).pull("lab/tamper@v1", out)
    assert not out.exists()
    code, _, err = dcreg("pull", "lab/tamper@v1", "-o", out, "--store", server.url)
    assert code == 1 and "data.safetensors" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_push_without_or_with_wrong_token_is_refused(
    server: Server, client_env: Path, make_artifact, monkeypatch: pytest.MonkeyPatch
) -> None:
    art = make_artifact(seed=5)
    before = store_state(server.home)
    for token in (None, "wrong-token-123"):
        if token is None:
            monkeypatch.delenv("DCREG_TOKEN")
        else:
            monkeypatch.setenv("DCREG_TOKEN", token)
        code, out, err = dcreg("push", art.path, "--name", "lab/notoken", "--store", server.url)
        assert code == 1 and out == ""
        assert len(err.strip().splitlines()) == 1 and "401" in err and "token" in err
        assert "wrong-token-123" not in err and server.token not in err
    assert store_state(server.home) == before
    assert not server.store().list(name="lab/notoken")


def test_two_concurrent_pushes_land_as_two_versions(server: Server, client_env: Path, make_artifact) -> None:
    arts = [make_artifact(seed=10 + i) for i in range(2)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from dcregistry.cli import main; main()",
                "push",
                str(a.path),
                "--name",
                "lab/race",
                "--store",
                server.url,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for a in arts
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    refs = sorted(o.split()[0] for o, _ in outs)
    assert refs == ["lab/race@v1", "lab/race@v2"]
    stored = {i.version: i.digest for i in server.store().list(name="lab/race", all_versions=True)}
    assert sorted(stored.values()) == sorted(a.digest for a in arts)


def test_offline_pull_of_a_cached_version(
    server: Server, client_env: Path, make_artifact, monkeypatch: pytest.MonkeyPatch
) -> None:
    art = make_artifact(seed=6)
    HubStore(server.url).push(art.path, "lab/offline")
    HubStore(server.url).pull("lab/offline@v1", client_env / "first")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    dead = "http://127.0.0.1:9"  # nothing listens: any network use would fail
    for ref in ("lab/offline@v1", "lab/offline"):
        with pytest.raises(NotFoundError, match="offline"):  # its cache is empty: never a request
            HubStore(dead).pull(ref, client_env / "never")
    offline = HubStore(server.url)
    out = offline.pull("lab/offline", client_env / "second")
    assert open_artifact(out).digest == art.digest
    assert manifest_digest(offline.manifest("lab/offline@v1")) == art.digest


def test_pages_and_hub_api_share_one_server(server: Server, client_env: Path, make_artifact) -> None:
    art = make_artifact(seed=7)
    HubStore(server.url).push(art.path, "lab/pages")
    index = httpx.get(f"{server.url}/")
    assert index.status_code == 200 and "lab/pages" in index.text
    page = httpx.get(f"{server.url}/lab/pages")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert any(d["id"] == "lab/pages" for d in httpx.get(f"{server.url}/api/datasets").json())
    assert (
        httpx.get(f"{server.url}/api/datasets/lab/pages").json()["sha"]
        == httpx.head(f"{server.url}/datasets/lab/pages/resolve/main/README.md").headers["x-repo-commit"]
    )
    # the server's side files are part of the store's layout: verify --all sees no anomaly
    report = server.store().verify_all()
    assert not report.anomalies, report.anomalies
    assert {c.info.name for c in report.failed} <= {"lab/tamper"}, [str(c.error) for c in report.failed]
