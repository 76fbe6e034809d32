"""The Hub store's own behaviour against `dcreg serve`: tags, digest refs, listing filters,
operations that do not exist on a Hub, and tokens kept out of messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcregistry.errors import NotFoundError, UserError
from dcregistry.store import AnnotatingStore, LocalStore, MaintainableStore, Store
from dcregistry.store.hub import HubStore, HubUnsupportedError

from .conftest import Server, dcreg, store_state


def test_tags_digest_refs_and_listing(server: Server, client_env: Path, make_artifact) -> None:
    a = make_artifact(seed=40)
    b = make_artifact(seed=41, dataset="mnist", image_shape=[1, 28, 28], pixel_space={"kind": "unit"})
    store = HubStore(server.url)
    assert store.push(a.path, "lab/hs", tags=["paper"]).version == 1
    assert store.push(b.path, "lab/hs").version == 2
    again = store.push(a.path, "lab/hs", tags=["again"])
    assert (again.version, again.created) == (1, False)
    assert store.tags("lab/hs") == {"again": 1, "latest": 2, "paper": 1}
    assert store.tag("lab/hs@v2", "paper").version == 2  # a tag moves
    assert store.resolve("lab/hs@paper").digest == b.digest
    assert store.untag("lab/hs", "again") == 1
    with pytest.raises(NotFoundError):
        store.resolve("lab/hs@again")
    assert store.resolve(f"lab/hs@sha256:{a.digest[7:19]}").version == 1
    assert store.resolve("hf://datasets/lab/hs@v2").digest == b.digest
    assert store.resolve("hf://datasets/lab/hs").version == 2
    assert [i.ref for i in store.list(name="lab/hs", all_versions=True)] == ["lab/hs@v1", "lab/hs@v2"]
    assert [i.ref for i in store.list(query=["dataset=mnist"]) if i.name == "lab/hs"] == ["lab/hs@v2"]
    assert not [i for i in store.list(query=["dataset=digits", "ipc>=99"]) if i.name == "lab/hs"]
    report = store.verify_all()
    assert report.ok and {c.info.ref for c in report.checks} >= {"lab/hs@v1", "lab/hs@v2"}


SELECTORS = ["", "@latest", "@v1", "@v2", "@v3", "@v9", "@paper", "@stable", "@nightly", "@sha256:0000"]
QUERIES = [
    [],
    ["dataset=mnist"],
    ["dataset!=mnist"],
    ["ipc>=3"],
    ["seed<41"],
    ["pixel!=unit"],
    ["name=lab/*"],
]


def test_local_and_hub_stores_select_and_query_alike(
    server: Server, client_env: Path, make_artifact, tmp_path: Path
) -> None:
    """One selection function and one query field map: the same versions, tags and selectors
    give the same answers (and the same messages) on a local store and on a Hub store."""
    arts = [
        make_artifact(seed=40),
        make_artifact(seed=41, ipc=3, dataset="mnist", image_shape=[1, 28, 28], pixel_space={"kind": "unit"}),
        make_artifact(seed=42, ipc=4),
    ]
    local, hub = LocalStore(tmp_path / "agree-local"), HubStore(server.url)
    for store in (local, hub):
        for art, tags in zip(arts, (["paper"], [], ["stable"]), strict=True):
            store.push(art.path, "lab/agree", tags=tags)
        store.tag("lab/agree@v2", "paper")  # a tag moves
    refs = [f"lab/agree{s}" for s in SELECTORS]
    refs += [f"lab/agree@sha256:{a.digest[7:15]}" for a in arts] + [f"lab/agree@{arts[2].digest}"]

    def answer(store: Store, ref: str) -> tuple[object, ...]:
        try:
            info = store.resolve(ref)
        except UserError as exc:
            return (type(exc), str(exc))
        return (info.version, info.digest, info.tags)

    for ref in refs:
        assert answer(local, ref) == answer(hub, ref), ref
    assert answer(local, "lab/agree@nightly")[0] is NotFoundError
    for query in QUERIES:
        got = [
            [(i.version, i.digest) for i in s.list(name="lab/agree", query=query, all_versions=True)]
            for s in (local, hub)
        ]
        assert got[0] == got[1], query


def test_local_only_operations_are_clear_errors(server: Server, client_env: Path, make_artifact) -> None:
    art = make_artifact(seed=42)
    store = HubStore(server.url)
    store.push(art.path, "lab/hs-ops")
    # a Hub store reads and writes; annotating and maintenance are not part of its interface
    assert store.capabilities == {"read", "write"}
    assert not isinstance(store, (AnnotatingStore, MaintainableStore))
    assert not hasattr(store, "rm") and not hasattr(store, "gc") and not hasattr(store, "annotate")
    for capability, what, hint in (
        ("maintain", "rm", "not removed by dcreg"),
        ("maintain", "gc", "nothing to collect"),
        ("annotate", "--record", "live in a local store"),
    ):
        with pytest.raises(HubUnsupportedError, match=f"{what} needs a store that can {capability}.*{hint}"):
            store.require(capability, what)
    assert store.require("write", "push") is store
    before = store_state(server.home)
    for args in (["rm", "lab/hs-ops@v1"], ["gc", "--no-dry-run"]):
        code, out, err = dcreg(*args, "--store", server.url)
        assert code == 1 and len(err.strip().splitlines()) == 1
        assert f"{args[0]} needs a store that can maintain, and {server.url} cannot" in err
    assert store_state(server.home) == before
    code, out, err = dcreg("show", "lab/hs-ops@v9", "--store", server.url)
    assert code == 1 and "v9" in err


def test_tokens_never_appear_in_messages(server: Server, client_env: Path, make_artifact) -> None:
    secret = "hf_SECRETsecretSECRET123"
    store = HubStore(server.url, token=secret)
    assert secret not in repr(store)
    with pytest.raises(UserError) as info:
        store.push(make_artifact(seed=43).path, "lab/hs-token")
    assert "401" in str(info.value) and secret not in str(info.value)
    with pytest.raises(UserError) as info:
        HubStore("http://127.0.0.1:9", token=secret).resolve("lab/x")
    assert secret not in str(info.value)
