"""`dcreg serve`'s results repos: commits of result records only, read back by plain Hub clients
and `datasets`, hostile commits refused with nothing stored, concurrent commits merged."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dcregistry.results import record_bytes, validate_record
from dcregistry.store.hub import HubStore

from .conftest import TOKEN, Server, start_server

AUTH = {"Authorization": f"Bearer {TOKEN}"}
HEX = "ab" * 32
REPO = "lab/res"


def record(
    seed: int = 0, acc: float = 0.5, *, hexd: str = HEX, pid: str = "dc-noaug+epochs=2@0123456789ab", **kw
):
    """A done cell's JSON, as harness/sweep/results.py writes it."""
    digest = f"sha256:{hexd}"
    d = {
        "kind": "dcreg-eval/1",
        "status": "done",
        "cell": {"artifact": digest, "protocol": pid, "seed": seed},
        "sweep": {"name": "t", "hash": "f" * 64},
        "env": {
            "python": "3.11",
            "harness": "0.1.0",
            "torch": None,
            "numpy": None,
            "cpu": "x",
            "gpu": None,
            "threads": 1,
        },
        "artifact": {"ref": "me/set@v1", "digest": digest, "dataset": "digits", "method": "random", "ipc": 1},
        "protocol": {
            "id": pid,
            "name": pid.split("@")[0],
            "hash": pid.split("@")[1],
            "content": {"epochs": 2},
            "overrides": {"epochs": 2},
        },
        "harness_version": "0.1.0",
        "torch_version": "2.0",
        "device": "cpu",
        "strategy": {"name": "sequential", "measured": {}, "reason": "test"},
        "seeds": [seed],
        "accuracies": [acc],
        "mean": acc,
        "std": 0.0,
        "final_train_loss": [0.5],
        "lr": None,
        "clipped": False,
        "baseline": None,
        "wall_time_s": 0.5,
        "created_at": "2026-12-03T00:00:00Z",
        "host": "vm",
    }
    d.update(kw)
    return d


def path_of(d: dict) -> str:
    a = d["artifact"]
    return (
        f"{a['dataset']}/ipc{a['ipc']}/{a['digest'][7:]}/{d['cell']['protocol']}/seed{d['cell']['seed']}.json"
    )


@pytest.fixture(scope="module")
def rserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("rserve")
    (root / "token").write_text(TOKEN)
    srv = start_server(root / "home", root / "token", root / "server.log", ["--results-repo", REPO])
    try:
        yield srv
    finally:
        srv.proc.terminate()
        srv.proc.wait(timeout=10)
        assert TOKEN not in (root / "server.log").read_text(errors="replace")


def api(srv: Server):
    from huggingface_hub import HfApi

    HubStore(srv.url)  # sets HF_HUB_DISABLE_XET for a non-Hub endpoint
    return HfApi(endpoint=srv.url, token=TOKEN)


def ndjson(srv: Server, repo: str, ops: list[dict], parent: str | None = None, token: str | None = TOKEN):
    header: dict = {"summary": "raw"}
    if parent:
        header["parentCommit"] = parent
    lines = [{"key": "header", "value": header}, *ops]
    body = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    headers = {"Content-Type": "application/x-ndjson"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(f"{srv.url}/api/datasets/{repo}/commit/main", content=body, headers=headers, timeout=30)


def add(path: str, data: bytes) -> dict:
    return {
        "key": "file",
        "value": {"path": path, "content": base64.b64encode(data).decode(), "encoding": "base64"},
    }


def head(srv: Server, repo: str) -> str:
    refs = httpx.get(f"{srv.url}/api/datasets/{repo}/refs").json()
    return refs["branches"][0]["targetCommit"]


def stored(srv: Server) -> dict[str, bytes]:
    out = {}
    for sub in ("hub/results", "hub/blobs", "repos"):
        base = srv.home / sub
        for p in sorted(base.rglob("*")) if base.is_dir() else []:
            if p.is_file() and p.name != ".lock":
                out[str(p.relative_to(srv.home))] = p.read_bytes()
    return out


# ------------------------------------------------------------------------------ read back
def test_records_commit_and_read_back_with_hub_clients_and_datasets(rserver: Server, tmp_path: Path) -> None:
    from huggingface_hub import CommitOperationAdd, hf_hub_download

    hf = api(rserver)
    recs = [
        record(0, 0.5),
        record(
            1,
            0.625,
            baseline={
                "kind": "random-real",
                "ipc": 1,
                "accuracies": [0.4],
                "mean": 0.4,
                "std": 0.0,
                "delta": 0.1,
            },
        ),
        record(
            0,
            0.75,
            pid="dsa@00aa11bb22cc",
            lr=0.01,
            protocol={
                "id": "dsa@00aa11bb22cc",
                "name": "dsa",
                "hash": "00aa11bb22cc",
                "content": {"augmentation": "dsa"},
                "overrides": {},
            },
        ),
    ]
    files = {path_of(r): record_bytes(r) for r in recs}
    for p, data in files.items():
        validate_record(p, data)
    before = head(rserver, REPO)
    info = hf.create_commit(
        REPO,
        [CommitOperationAdd(path_in_repo=p, path_or_fileobj=d) for p, d in files.items()],
        commit_message="three records",
        repo_type="dataset",
    )
    assert len(info.oid) == 40 and info.oid != before and head(rserver, REPO) == info.oid
    listed = hf.list_repo_files(REPO, repo_type="dataset")
    assert sorted(listed) == sorted([*files, "README.md"])
    one = next(iter(files))
    got = hf_hub_download(REPO, one, repo_type="dataset", endpoint=rserver.url, cache_dir=tmp_path / "c")
    assert Path(got).read_bytes() == files[one]
    commits = hf.list_repo_commits(REPO, repo_type="dataset")
    assert [c.commit_id for c in commits][:2] == [info.oid, before] and commits[0].title == "three records"
    assert REPO in [d.id for d in hf.list_datasets()]
    tree = {
        e.path
        for e in hf.list_repo_tree(REPO, repo_type="dataset", path_in_repo="digits/ipc1", recursive=True)
    }
    assert set(files) <= tree

    code = (
        "import datasets, json, sys\n"
        "from dcregistry.results import results_features\n"
        f"a = datasets.load_dataset({REPO!r}, split='train', cache_dir=sys.argv[1])\n"
        f"b = datasets.load_dataset('json', data_files='hf://datasets/{REPO}@main/*/ipc*/*/*/seed*.json', "
        "split='train', cache_dir=sys.argv[1] + '2', features=results_features())\n"
        "print(json.dumps({'a': sorted(a['mean']), 'b': sorted(b['mean']), 'lr': sorted(map(str, a['lr'])), "
        "'pid': sorted(x['id'] for x in a['protocol'])}))\n"
    )
    env = {
        **os.environ,
        "HF_ENDPOINT": rserver.url,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "HF_TOKEN": TOKEN,
    }
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "ds")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["a"] == [0.5, 0.625, 0.75]
    assert out["b"] == [0.5, 0.625, 0.75]
    assert out["lr"] == ["0.01", "None", "None"]
    assert out["pid"] == [
        "dc-noaug+epochs=2@0123456789ab",
        "dc-noaug+epochs=2@0123456789ab",
        "dsa@00aa11bb22cc",
    ]


def test_same_records_again_make_no_commit_and_a_changed_one_replaces_its_file(rserver: Server) -> None:
    r = record(5, 0.5)
    assert ndjson(rserver, REPO, [add(path_of(r), record_bytes(r))]).status_code == 200
    h = head(rserver, REPO)
    again = ndjson(rserver, REPO, [add(path_of(r), record_bytes(r))])
    assert again.status_code == 200 and again.json()["commitOid"] == h == head(rserver, REPO)
    changed = record(5, 0.875)
    res = ndjson(rserver, REPO, [add(path_of(r), record_bytes(changed))])
    assert res.status_code == 200 and res.json()["commitOid"] != h
    got = httpx.get(f"{rserver.url}/datasets/{REPO}/resolve/main/{path_of(r)}")
    assert got.content == record_bytes(changed)
    old = httpx.get(f"{rserver.url}/datasets/{REPO}/resolve/{h}/{path_of(r)}")  # history keeps it
    assert old.content == record_bytes(r)


def test_stale_parent_with_other_files_is_merged_and_a_clash_is_412(rserver: Server) -> None:
    base = head(rserver, REPO)
    a, b = record(10, 0.1), record(11, 0.2)
    assert ndjson(rserver, REPO, [add(path_of(a), record_bytes(a))], parent=base).status_code == 200
    res = ndjson(rserver, REPO, [add(path_of(b), record_bytes(b))], parent=base)  # stale, disjoint
    assert res.status_code == 200
    files = api(rserver).list_repo_files(REPO, repo_type="dataset")
    assert path_of(a) in files and path_of(b) in files
    clash = ndjson(rserver, REPO, [add(path_of(a), record_bytes(record(10, 0.3)))], parent=base)
    assert clash.status_code == 412


def test_concurrent_pushers_of_disjoint_records_both_land(rserver: Server) -> None:
    from huggingface_hub import CommitOperationAdd

    hf = api(rserver)
    groups = [[record(100 + 10 * g + i, 0.5) for i in range(5)] for g in range(4)]
    errors: list[BaseException] = []

    def push(recs: list[dict]) -> None:
        try:
            for r in recs:  # one commit per record: many interleavings
                hf.create_commit(
                    REPO,
                    [CommitOperationAdd(path_in_repo=path_of(r), path_or_fileobj=record_bytes(r))],
                    commit_message="one",
                    repo_type="dataset",
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=push, args=(g,)) for g in groups]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    files = set(hf.list_repo_files(REPO, repo_type="dataset"))
    assert {path_of(r) for g in groups for r in g} <= files
    assert len(hf.list_repo_commits(REPO, repo_type="dataset")) >= 20


# ------------------------------------------------------------------------------ refusals
def _huge() -> bytes:
    r = record(0, 0.5, host="x" * (1 << 20))
    return record_bytes(r)


HOSTILE = {
    "not-json": lambda p: add(p, b"\x00garbage{"),
    "not-a-record": lambda p: add(p, b'{"hello": "world"}\n'),
    "nan-accuracy": lambda p: add(
        p, record_bytes(record(0)).replace(b'"accuracies":[0.5]', b'"accuracies":[NaN]')
    ),
    "out-of-range": lambda p: add(p, record_bytes(record(0, 2.5))),
    "wrong-place": lambda p: add(p, record_bytes(record(1))),
    "extra-field": lambda p: add(p, record_bytes(record(0, surprise=1))),
    "bool-seed": lambda p: add(p, record_bytes(record(0, seeds=[False]))),
    "failed-cell": lambda p: add(p, record_bytes(record(0, status="failed"))),
    "string-accuracy": lambda p: add(p, record_bytes(record(0, accuracies=["0.5"]))),
    "multi-line": lambda p: add(p, json.dumps(record(0), indent=1).encode()),
    "huge": lambda p: add(p, _huge()),
    "dotdot": lambda p: add("../x", record_bytes(record(0))),
    "safetensors": lambda p: add("data.safetensors", b"\x00" * 16),
    "manifest": lambda p: add("manifest.json", b"{}"),
    "readme": lambda p: add("README.md", b"# mine"),
    "lfs": lambda p: {"key": "lfsFile", "value": {"path": p, "algo": "sha256", "oid": "0" * 64, "size": 10}},
    "delete": lambda p: {"key": "deletedFile", "value": {"path": p}},
    "delete-folder": lambda p: {"key": "deletedFolder", "value": {"path": "digits"}},
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_commits_are_refused_and_nothing_is_stored(rserver: Server, case: str) -> None:
    good = record(0, 0.5)
    p = path_of(good)
    assert ndjson(rserver, REPO, [add(p, record_bytes(good))]).status_code == 200  # p exists
    before, h = stored(rserver), head(rserver, REPO)
    res = ndjson(rserver, REPO, [HOSTILE[case](p)])
    assert 400 <= res.status_code < 500, (case, res.status_code, res.text[:300])
    assert "error" in res.json()
    assert stored(rserver) == before and head(rserver, REPO) == h


def test_writes_need_the_token(rserver: Server) -> None:
    r = record(50)
    before = stored(rserver)
    assert ndjson(rserver, REPO, [add(path_of(r), record_bytes(r))], token=None).status_code == 401
    assert ndjson(rserver, REPO, [add(path_of(r), record_bytes(r))], token="wrong").status_code == 401
    assert stored(rserver) == before


def test_kinds_do_not_mix(rserver: Server, make_artifact) -> None:
    from huggingface_hub import CommitOperationAdd

    art = make_artifact(seed=7)
    hf = api(rserver)
    # an artifact commit into a results repo
    before = stored(rserver)
    ops = [
        CommitOperationAdd(path_in_repo=f, path_or_fileobj=str(art.path / f))
        for f in ("manifest.json", "data.safetensors", "README.md")
    ]
    from huggingface_hub.errors import HfHubHTTPError

    with pytest.raises((HfHubHTTPError, ValueError), match="results repo"):  # LFS batch: refused
        hf.create_commit(REPO, ops, commit_message="artifact", repo_type="dataset")
    assert stored(rserver) == before
    small = [add("manifest.json", (art.path / "manifest.json").read_bytes())]
    res = ndjson(rserver, REPO, small)  # the manifest alone, inline
    assert res.status_code == 422 and "results repo" in res.json()["error"]
    assert stored(rserver) == before
    # a results commit into an artifact repo
    HubStore(rserver.url, TOKEN).push(art.path, "lab/art")
    before = stored(rserver)
    r = record(3)
    res = ndjson(rserver, "lab/art", [add(path_of(r), record_bytes(r))])
    assert res.status_code == 422 and "results repo" in res.json()["error"]
    assert stored(rserver) == before
    # a fresh repo whose first commit is records becomes a results repo; then artifacts are refused
    hf.create_repo("lab/res2", repo_type="dataset")
    assert ndjson(rserver, "lab/res2", [add(path_of(r), record_bytes(r))]).status_code == 200
    assert "README.md" in hf.list_repo_files("lab/res2", repo_type="dataset")
    with pytest.raises((HfHubHTTPError, ValueError)):
        hf.create_commit("lab/res2", ops, commit_message="artifact", repo_type="dataset")
    # a mixed first commit is refused
    hf.create_repo("lab/mixed", repo_type="dataset")
    mixed = ndjson(rserver, "lab/mixed", [add(path_of(r), record_bytes(r)), add("manifest.json", b"{}")])
    assert mixed.status_code == 422


def test_results_repo_option_refuses_an_artifact_repo(tmp_path: Path, make_artifact) -> None:
    from dcregistry.errors import UserError
    from dcregistry.server import create_app
    from dcregistry.store.local import LocalStore

    LocalStore(tmp_path / "home").push(make_artifact(seed=9).path, "lab/taken")
    with pytest.raises(UserError, match="artifact versions"):
        create_app(tmp_path / "home", TOKEN, results_repos=["lab/taken"])
    app = create_app(tmp_path / "home", TOKEN, results_repos=["lab/fresh", "lab/fresh"])  # idempotent
    assert app.state.backend.is_results("lab/fresh") and not app.state.backend.is_results("lab/taken")


def test_snapshot_download_of_a_results_repo(rserver: Server, tmp_path: Path) -> None:
    from huggingface_hub import snapshot_download

    r = record(77, 0.25)
    assert ndjson(rserver, REPO, [add(path_of(r), record_bytes(r))]).status_code == 200
    snap = Path(snapshot_download(REPO, repo_type="dataset", endpoint=rserver.url, cache_dir=tmp_path / "s"))
    assert (snap / path_of(r)).read_bytes() == record_bytes(r)
    assert (snap / "README.md").read_text().startswith("---\n")
