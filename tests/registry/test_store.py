"""The embedded local store's API: versions, dedupe, tags, resolve, open/pull, verify, rm, gc,
annotations, cards, the SQLite index and its repair, metadata queries."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dcregistry.artifact import DATA_FILE, MANIFEST_FILE, open_artifact
from dcregistry.canonical import canonical_json, sha256_bytes
from dcregistry.errors import (
    AmbiguousReferenceError,
    IntegrityError,
    InvalidNameError,
    InvalidReferenceError,
    NotFoundError,
    TagProtectedError,
    UserError,
)
from dcregistry.store import get_store, open_ref
from dcregistry.store.layout import INDEX_FILE, VersionRecord
from dcregistry.store.local import LocalStore
from tests.conftest import artifact_tensors


# ---------------------------------------------------------------------------------- helpers
def tree_state(root: Path) -> dict[str, bytes] | None:
    """Every file under ``root`` with its bytes (None if root is absent): 'store unchanged'."""
    if not root.exists():
        return None
    return {
        str(p.relative_to(root)): (b"" if p.is_dir() else p.read_bytes()) for p in sorted(root.rglob("*"))
    }


def blob_of(store: LocalStore, ref: str, fname: str = DATA_FILE) -> Path:
    return store.layout.blob_path(store.manifest(ref)["files"][fname]["sha256"])


def tamper(path: Path) -> None:
    """Flip one byte in the middle of a (read-only) file, as an attacker or a bad disk would."""
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture
def store(dcreg_home: Path) -> LocalStore:
    return LocalStore()


# ------------------------------------------------------------------------------ push basics
def test_root_defaults_to_dcreg_home(dcreg_home, monkeypatch, tmp_path):
    assert LocalStore().root == dcreg_home
    monkeypatch.delenv("DCREG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert LocalStore().root == tmp_path / "h" / ".cache" / "dcreg"
    assert LocalStore(tmp_path / "x").root == tmp_path / "x"


def test_push_numbers_versions_and_dedupes(store, make_artifact):
    a, b = make_artifact(seed=0), make_artifact(seed=1)
    r1 = store.push(a.path, "lab/digits")
    assert (r1.version, r1.created, r1.digest) == (1, True, a.digest)
    assert str(r1) == f"lab/digits@v1 {a.digest}"
    again = store.push(a.path, "lab/digits")
    assert (again.version, again.created, again.digest) == (1, False, a.digest)
    r2 = store.push(b.path, "lab/digits")
    assert (r2.version, r2.created) == (2, True)
    assert store.push(a.path, "lab/digits").version == 1  # still v1, not a new v3
    # the same content under another name is another name's v1, sharing the blobs
    assert store.push(a.path, "lab/other").version == 1
    assert [i.ref for i in store.list(all_versions=True)] == [
        "lab/digits@v1",
        "lab/digits@v2",
        "lab/other@v1",
    ]


def test_layout_blobs_are_content_addressed_and_read_only(store, make_artifact):
    art = make_artifact()
    store.push(art.path, "lab/digits")
    root = store.root
    vfile = json.loads((root / "repos/lab/digits/versions/v1").read_text())
    assert vfile["digest"] == art.digest and vfile["created_at"].endswith("Z")
    mblob = store.layout.blob_path(art.digest[7:])
    assert mblob.read_bytes() == canonical_json(art.manifest)
    assert "sha256:" + sha256_bytes(mblob.read_bytes()) == art.digest
    for fname, entry in art.manifest["files"].items():
        blob = root / "blobs" / "sha256" / entry["sha256"][:2] / entry["sha256"]
        assert blob.read_bytes() == (art.path / fname).read_bytes()
        assert stat.S_IMODE(blob.stat().st_mode) == 0o444
    assert (root / INDEX_FILE).is_file() and (root / "lock").exists()
    assert list((root / "tmp").iterdir()) == []


def test_push_refuses_bad_input_and_leaves_store_unchanged(store, make_artifact, tmp_path):
    art = make_artifact()
    for bad in ("../x", "/lab/x", "Lab/x", "lab/my set", "lab", "lab/x/y", "lab/..", "lab/a..b"):
        with pytest.raises(InvalidNameError):
            store.push(art.path, bad)
    assert tree_state(store.root) is None  # not even created
    store.push(art.path, "lab/ok")
    before = tree_state(store.root)
    with pytest.raises(UserError, match="manifest.json"):
        store.push(tmp_path, "lab/ok")  # not an artifact
    with pytest.raises(InvalidNameError):
        store.push(art.path, "lab/ok", tags=["Bad Tag"])
    with pytest.raises(UserError, match="latest"):
        store.push(art.path, "lab/ok", tags=["latest"])
    # a directory whose data was modified after it was built is refused (names the file)
    other = make_artifact(seed=5)
    tamper(other.path / DATA_FILE)
    with pytest.raises(IntegrityError, match=DATA_FILE):
        store.push(other.path, "lab/ok")
    assert tree_state(store.root) == before


# ------------------------------------------------------------------------------- resolving
def test_resolve_forms(store, make_artifact):
    a, b = make_artifact(seed=0), make_artifact(seed=1)
    store.push(a.path, "lab/digits", tags=["stable"])
    store.push(b.path, "lab/digits")
    assert store.resolve("lab/digits").version == 2
    assert store.resolve("lab/digits@latest").version == 2
    assert store.resolve("lab/digits@v1").digest == a.digest
    assert store.resolve("lab/digits@stable").version == 1
    assert store.resolve(f"lab/digits@sha256:{b.digest[7:11]}").version == 2
    assert store.resolve(f"lab/digits@{b.digest}").version == 2
    info = store.resolve("lab/digits@v1")
    assert info.tags == ("stable",) and info.metadata["ipc"] == 2 and info.ref == "lab/digits@v1"
    assert store.resolve("lab/digits").tags == ("latest",)


def test_resolve_errors_are_helpful(store, make_artifact):
    store.push(make_artifact().path, "lab/digits", tags=["stable"])
    with pytest.raises(NotFoundError, match="names: lab/digits"):
        store.resolve("lab/nope")
    with pytest.raises(NotFoundError, match="live versions: v1"):
        store.resolve("lab/digits@v7")
    with pytest.raises(NotFoundError, match="stable->v1"):
        store.resolve("lab/digits@nightly")
    with pytest.raises(NotFoundError, match="digest starting with"):
        store.resolve("lab/digits@sha256:" + "0" * 40)
    with pytest.raises(InvalidReferenceError):
        store.resolve("lab/digits@sha256:zz")
    with pytest.raises(InvalidNameError):
        store.resolve("Lab Digits")
    with pytest.raises(UserError, match="not available"):
        store.resolve("hf://datasets/org/name")
    with pytest.raises(NotFoundError, match="store is empty"):
        LocalStore(store.root.parent / "empty").resolve("lab/digits")


def test_ambiguous_digest_prefix(store, make_artifact):
    art = make_artifact()
    store.push(art.path, "lab/digits")
    # A second version whose digest shares the first 10 hex digits (crafted: real collisions of
    # a 4+ digit prefix need hundreds of pushes).
    twin = art.digest[:17] + ("0" if art.digest[17] != "0" else "1") + art.digest[18:]
    with store.layout.locked():
        store.layout.write_version("lab/digits", 2, VersionRecord(twin, "2026-01-01T00:00:00Z"))
    with pytest.raises(AmbiguousReferenceError, match="v1.*v2"):
        store.resolve("lab/digits@" + art.digest[:17])
    assert store.resolve("lab/digits@" + art.digest[:18]).version == 1


# ------------------------------------------------------------------------------------ tags
def test_tags_move_log_and_latest_is_automatic(store, make_artifact):
    a, b = make_artifact(seed=0), make_artifact(seed=1)
    store.push(a.path, "lab/digits", tags=["stable", "paper"])
    store.push(b.path, "lab/digits")
    assert store.tags("lab/digits") == {"latest": 2, "paper": 1, "stable": 1}
    assert store.tag("lab/digits@v2", "stable").tags == ("latest", "stable")
    store.tag("lab/digits@v2", "stable")  # no-op: already there, not logged again
    assert store.untag("lab/digits", "paper") == 1
    assert store.tags("lab/digits") == {"latest": 2, "stable": 2}
    log = store.tag_log("lab/digits")
    assert [(e["action"], e["tag"], e["version"]) for e in log] == [
        ("set", "stable", 1),
        ("set", "paper", 1),
        ("set", "stable", 2),
        ("unset", "paper", 1),
    ]
    assert all(e["ts"].endswith("Z") and e["digest"].startswith("sha256:") for e in log)
    # re-pushing identical content still applies new tags
    assert store.push(a.path, "lab/digits", tags=["old"]).created is False
    assert store.tags("lab/digits")["old"] == 1
    for bad in ("latest", "v3", "sha256:abcd", "Bad"):
        with pytest.raises(UserError):
            store.tag("lab/digits@v1", bad)
    with pytest.raises(UserError, match="automatic"):
        store.untag("lab/digits", "latest")
    with pytest.raises(NotFoundError, match="no tag 'nope'"):
        store.untag("lab/digits", "nope")
    with pytest.raises(NotFoundError):
        store.tags("lab/nope")


def test_torn_tag_log_line_is_ignored_and_repaired(store, make_artifact):
    store.push(make_artifact().path, "lab/digits", tags=["stable"])
    with open(store.root / "repos/lab/digits/tags.log", "a") as f:
        f.write('{"ts": "2026-01-01T00:00:00Z", "action": "se')  # a crash mid-append
    assert store.tags("lab/digits") == {"latest": 1, "stable": 1}
    store.push(make_artifact(seed=1).path, "lab/digits", tags=["next"])
    assert store.tags("lab/digits") == {"latest": 2, "next": 2, "stable": 1}


# ------------------------------------------------------------------------------ open / pull
def test_open_returns_verified_read_only_snapshot(store, make_artifact):
    art = make_artifact(seed=3)
    store.push(art.path, "lab/digits")
    opened = store.open("lab/digits")
    assert opened.digest == art.digest
    np.testing.assert_array_equal(opened.numpy("images"), artifact_tensors(seed=3)["images"])
    assert opened.path.parent == store.root / "snapshots"
    assert all(not os.access(p, os.W_OK) or os.geteuid() == 0 for p in opened.path.iterdir())
    assert store.open("lab/digits@v1", verify=False).path == opened.path  # reused
    assert open_ref("lab/digits").digest == art.digest
    assert open_ref(str(art.path)).digest == art.digest
    with pytest.MonkeyPatch.context() as mp:  # hf:// refs go to the Hub ($HF_ENDPOINT)
        mp.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
        with pytest.raises(UserError, match="cannot talk to http://127.0.0.1:9"):
            open_ref("hf://datasets/org/name")


def test_pull_copies_identical_bytes_and_is_idempotent(store, make_artifact, tmp_path, monkeypatch):
    art = make_artifact()
    store.push(art.path, "lab/digits", tags=["stable"])
    out = store.pull("lab/digits@stable", tmp_path / "out" / "deep")
    for f in art.path.iterdir():
        assert (out / f.name).read_bytes() == f.read_bytes()
        assert os.access(out / f.name, os.W_OK)  # the user's copy, not the store's blob
    assert open_artifact(out).digest == art.digest
    assert store.pull("lab/digits", out) == out  # same verified content: fine
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(UserError, match="not empty"):
        store.pull("lab/digits", tmp_path / "busy")
    (tmp_path / "empty").mkdir()
    assert store.pull("lab/digits", tmp_path / "empty") == tmp_path / "empty"
    monkeypatch.chdir(tmp_path)
    assert store.pull("lab/digits") == Path("digits-v1")
    assert (tmp_path / "digits-v1" / MANIFEST_FILE).is_file()
    assert not [p for p in tmp_path.iterdir() if "dcreg-pull" in p.name]


def test_tampered_blob_fails_verify_open_and_pull(store, make_artifact, tmp_path):
    art = make_artifact()
    store.push(art.path, "lab/digits")
    store.push(make_artifact(seed=1).path, "lab/digits")
    store.open("lab/digits@v1")  # snapshot exists (hard links share the tampered inode)
    tamper(blob_of(store, "lab/digits@v1"))
    with pytest.raises(IntegrityError, match=f"lab/digits@v1: {DATA_FILE}"):
        store.verify("lab/digits@v1")
    with pytest.raises(IntegrityError, match=DATA_FILE):
        store.open("lab/digits@v1")
    with pytest.raises(IntegrityError, match="nothing was written"):
        store.pull("lab/digits@v1", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(IntegrityError):
        store.pull("lab/digits@v1", tmp_path / "empty")
    assert list((tmp_path / "empty").iterdir()) == []
    assert not [p for p in tmp_path.iterdir() if "dcreg-pull" in p.name]
    results = {i.ref: e for i, e in store.verify_all()}
    assert results["lab/digits@v2"] is None
    assert isinstance(results["lab/digits@v1"], IntegrityError)
    # pushing the original again repairs the damaged blob
    assert store.push(art.path, "lab/digits").created is False
    assert store.verify("lab/digits@v1").digest == art.digest


def test_missing_or_modified_manifest_blob(store, make_artifact):
    art = make_artifact()
    store.push(art.path, "lab/digits")
    mblob = store.layout.blob_path(art.digest[7:])
    tamper(mblob)
    with pytest.raises(IntegrityError, match="manifest blob"):
        store.verify("lab/digits")
    os.unlink(mblob)
    with pytest.raises(IntegrityError, match="missing"):
        store.open("lab/digits")
    with pytest.raises(IntegrityError):
        store.gc()  # refuses to guess what a broken version references
    assert store.list()[0].ref == "lab/digits@v1"  # still listed, so it can be found and removed
    store.rm("lab/digits")
    assert store.list() == []


# -------------------------------------------------------------------------------- rm / gc
def test_rm_protects_tags_and_never_reuses_numbers(store, make_artifact):
    a, b, c = (make_artifact(seed=s) for s in range(3))
    store.push(a.path, "lab/digits", tags=["stable"])
    store.push(b.path, "lab/digits")
    before = tree_state(store.root)
    with pytest.raises(TagProtectedError, match="stable"):
        store.rm("lab/digits@v1")
    assert tree_state(store.root) == before
    removed = store.rm("lab/digits@v2")  # latest is automatic, not protecting
    assert removed.ref == "lab/digits@v2"
    assert store.resolve("lab/digits").version == 1
    with pytest.raises(NotFoundError, match="removed"):
        store.resolve("lab/digits@v2")
    assert store.push(c.path, "lab/digits").version == 3
    assert store.push(b.path, "lab/digits").version == 4  # content of a removed version: new number
    store.rm("lab/digits@stable", force=True)
    assert store.tags("lab/digits") == {"latest": 4}
    assert store.tag_log("lab/digits")[-1]["action"] == "unset"
    assert [i.version for i in store.list(all_versions=True)] == [3, 4]


def test_gc_dry_run_then_delete(store, make_artifact, tmp_path):
    a, b = make_artifact(seed=0), make_artifact(seed=1)
    store.push(a.path, "lab/digits")
    store.push(b.path, "lab/digits")
    store.push(a.path, "lab/copy")  # shares every blob of v1
    store.open("lab/digits@v2")
    assert store.gc().blobs == []
    store.rm("lab/digits@v1")
    assert store.gc().blobs == []  # lab/copy still references them
    store.rm("lab/digits@v2")
    (store.root / "tmp" / "999999999-dead.blob").write_bytes(b"x" * 10)  # a dead writer's temp
    before = tree_state(store.root)
    report = store.gc()
    assert report.dry_run and len(report.blobs) == 3  # v2's manifest, data, card
    assert report.tmp == ["tmp/999999999-dead.blob"] and report.bytes > 0
    assert tree_state(store.root) == before  # dry run deletes nothing
    deleted = store.gc(dry_run=False)
    assert deleted.blobs == report.blobs and not deleted.dry_run
    assert not (store.root / "tmp" / "999999999-dead.blob").exists()
    assert all(not store.layout.blob_path(d[7:]).exists() for d in report.blobs)
    assert store.gc().blobs == [] and store.gc().tmp == []
    assert [e for _, e in store.verify_all()] == [None]
    assert store.push(b.path, "lab/digits").version == 3


def test_gc_removes_temp_files_of_dead_writers_anywhere_in_the_store(store, make_artifact):
    """A push killed between writing and renaming leaves a temp name next to its target: gc finds
    it wherever it is, by its marker, and checks the writer's pid *and* incarnation."""
    from dcregistry.fsio import tmp_name

    store.push(make_artifact().path, "lab/digits")
    name_dir = next(p.parent for p in store.root.rglob("v1*") if p.is_file())
    dead = name_dir / f".v2.json.~tmp.{os.getpid()}.00000000.{'a' * 12}.part"  # this pid, an earlier run
    dead.write_bytes(b"{")
    live = name_dir / tmp_name(".v3.json.", ".part")
    live.write_bytes(b"{")
    report = store.gc(dry_run=False)
    assert report.tmp == [str(dead.relative_to(store.root))]
    assert not dead.exists() and live.exists()
    live.unlink()
    assert [e for _, e in store.verify_all()] == [None]


def test_gc_keeps_live_temp_files(store, make_artifact):
    store.push(make_artifact().path, "lab/digits")
    live = store.root / "tmp" / f"{os.getpid()}-live.blob"
    live.write_bytes(b"x")
    assert store.gc(dry_run=False).tmp == []
    assert live.exists()


# ---------------------------------------------------------------------------- annotations
def test_annotations_and_card(store, make_artifact):
    art = make_artifact()
    store.push(art.path, "lab/digits")
    result = {
        "protocol": {
            "id": "dsa@abc123",
            "content": {"arch": "convnet", "augmentation": "dsa", "epochs": 1000},
        },
        "accuracies": [0.9, 0.92],
        "mean": 0.91,
        "std": 0.01,
        "device": "cpu",
    }
    first = store.annotate("lab/digits", "eval", result)
    second = store.annotate("lab/digits@v1", "note", {"text": "looks fine"})
    third = store.annotate("lab/digits", "eval", {**result, "mean": 0.5})
    assert first < second < third  # ids sort by time
    anns = store.annotations("lab/digits")
    assert [a["id"] for a in anns] == [first, second, third]
    assert [a["kind"] for a in store.annotations("lab/digits", "eval")] == ["eval", "eval"]
    assert anns[0]["record"] == result and anns[0]["digest"] == art.digest
    assert anns[0]["version"] == 1 and anns[0]["name"] == "lab/digits"
    # annotations never change the version
    assert store.resolve("lab/digits").digest == art.digest
    store.verify("lab/digits")
    card = store.card("lab/digits")
    assert "`dsa@abc123`" in card and "91.00 ± 1.00" in card and "lab/digits@v1" in card
    assert card.startswith("---\n")
    with pytest.raises(UserError):
        store.annotate("lab/digits", "Bad Kind", {})
    with pytest.raises(UserError, match="JSON"):
        store.annotate("lab/digits", "eval", {"mean": float("nan")})
    with pytest.raises(NotFoundError):
        store.annotate("lab/digits@v9", "eval", {})


# --------------------------------------------------------------------------- index / query
def test_list_filters(store, make_artifact):
    store.push(make_artifact(ipc=1, seed=0).path, "lab/random1")
    store.push(make_artifact(ipc=2, seed=1, method="dc").path, "lab/dc2")
    store.push(make_artifact(ipc=3, seed=2, method="dc").path, "lab/dc2")  # dc2@v2 has ipc 3
    store.push(make_artifact(ipc=2, seed=3, soft=True, method="mtt").path, "other/mtt2")

    def refs(*q, **kw):
        return [i.ref for i in store.list(query=q, **kw)]

    assert refs() == ["lab/dc2@v2", "lab/random1@v1", "other/mtt2@v1"]
    assert refs(all_versions=True) == ["lab/dc2@v1", "lab/dc2@v2", "lab/random1@v1", "other/mtt2@v1"]
    assert refs("method=dc") == ["lab/dc2@v2"]
    assert refs("method=dc", "ipc<=2") == ["lab/dc2@v1"]  # highest *matching* version per name
    assert refs("ipc>1", "ipc<3") == ["lab/dc2@v1", "other/mtt2@v1"]
    assert refs("method!=dc") == ["lab/random1@v1", "other/mtt2@v1"]
    assert refs("label_kind=soft") == ["other/mtt2@v1"]
    assert refs("pixel=normalized", "dataset=digits", "num_classes=10") == refs()
    assert refs("name=lab/*") == ["lab/dc2@v2", "lab/random1@v1"]
    assert refs("version>=2", all_versions=True) == ["lab/dc2@v2"]
    assert refs("dataset=cifar10") == []
    digest = store.resolve("other/mtt2").digest
    assert refs(f"digest={digest[7:15]}") == ["other/mtt2@v1"]
    assert refs("created_at>=2000-01-01") == refs()
    assert refs("made_at=2026-01-01T00:00:00Z") == refs()
    assert [i.ref for i in store.list(name="lab/dc2", all_versions=True)] == ["lab/dc2@v1", "lab/dc2@v2"]
    assert store.list(query="ipc=1 method=random")[0].ref == "lab/random1@v1"
    info = store.list(name="lab/dc2")[0]
    assert info.tags == ("latest",) and info.metadata["method"] == "dc"
    for bad in ("foo=1", "ipc<=ten", "ipc", "ipc="):
        with pytest.raises(UserError):
            store.list(query=[bad])
    assert LocalStore(store.root.parent / "nothing-here").list() == []
    assert not (store.root.parent / "nothing-here").exists()


def _index_rows(store: LocalStore) -> list[tuple]:
    with sqlite3.connect(store.root / INDEX_FILE) as conn:
        return sorted(conn.execute("SELECT name, version, digest, ipc FROM versions"))


def test_index_is_rebuilt_when_missing_corrupt_or_stale(store, make_artifact):
    for seed in range(3):
        store.push(make_artifact(seed=seed, ipc=seed + 1).path, "lab/digits")
    want = [i.to_json() for i in store.list(all_versions=True)]
    rows = _index_rows(store)
    assert [(r[0], r[1], r[3]) for r in rows] == [("lab/digits", v, v) for v in (1, 2, 3)]
    os.unlink(store.root / INDEX_FILE)
    assert [i.to_json() for i in store.list(all_versions=True)] == want
    assert _index_rows(store) == rows
    (store.root / INDEX_FILE).write_bytes(b"this is not a database" * 100)
    assert [i.to_json() for i in store.list(all_versions=True)] == want
    # stale: a push killed between its version file and the index update
    with sqlite3.connect(store.root / INDEX_FILE) as conn:
        conn.execute("DELETE FROM versions WHERE version = 3")
    assert [i.version for i in store.list(all_versions=True, query=["ipc>=2"])] == [2, 3]
    assert _index_rows(store) == rows
    # stale the other way: a row whose version file is gone
    repo = store.root / "repos/lab/digits"
    (repo / "removed").mkdir()
    os.replace(repo / "versions/v3", repo / "removed/v3")
    assert [i.version for i in store.list(all_versions=True)] == [1, 2]
    assert store.rebuild_index() == 2


def test_read_only_store_lists_from_an_in_memory_index(store, make_artifact):
    if os.geteuid() == 0:
        pytest.skip("root ignores permissions")
    store.push(make_artifact().path, "lab/digits")
    os.unlink(store.root / INDEX_FILE)
    os.chmod(store.root, 0o555)
    try:
        assert [i.ref for i in store.list()] == ["lab/digits@v1"]
    finally:
        os.chmod(store.root, 0o755)


# ----------------------------------------------------------------------------- entry points
def test_get_store(tmp_path, dcreg_home):
    assert get_store(None).root == dcreg_home
    assert get_store("local").root == dcreg_home
    assert get_store(str(tmp_path / "s")).root == tmp_path / "s"
    from dcregistry.store.hub import HubStore

    assert isinstance(get_store("hub"), HubStore) and isinstance(get_store("hf"), HubStore)
    assert get_store("http://127.0.0.1:8008").endpoint == "http://127.0.0.1:8008"
    with pytest.raises(UserError, match="is a reference, not a store"):
        get_store("hf://datasets/org/x")
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match="not a directory"):
        get_store(str(tmp_path / "f"))


def test_store_modules_do_not_import_torch():
    code = (
        "import sys, dcregistry.store.local, dcregistry.store, dcregistry.cli.store_cmds;"
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_progress_bar_on_stderr_for_large_transfers(store, make_artifact, tmp_path, monkeypatch, capsys):
    import dcregistry.store.blobs as local

    monkeypatch.setattr(local, "PROGRESS_MIN_BYTES", 1)
    art = make_artifact()
    store.push(art.path, "lab/digits", progress=True)
    store.pull("lab/digits", tmp_path / "out", progress=True)
    err = capsys.readouterr().err
    assert "push" in err and "pull" in err
    store.pull("lab/digits", tmp_path / "quiet")  # progress off by default
    assert capsys.readouterr().err == ""
