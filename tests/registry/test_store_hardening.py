"""Hostile paths, names and machine states against the store and its CLI (issue 6, store half):
outputs inside the store, unexpected entries in the store's tree, control characters in names,
directories shadowing store names, unusable output paths, bad query numbers, non-UTF-8 names,
damaged tag-log lines, read-only stores and full disks. Every case is exit 0 or a one-line
exit 1 with the store unchanged, never exit 2."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dcregistry import fsio
from dcregistry.errors import (
    DiskFullError,
    InvalidNameError,
    InvalidReferenceError,
    OutputExistsError,
    OutputPathError,
    ReadOnlyError,
    StoreReadOnlyError,
    UserError,
)
from dcregistry.refs import parse_ref
from dcregistry.store import LocalStore, resolve_ref
from tests.registry.test_cli_store import dcreg, one_line_error
from tests.registry.test_store import tree_state


@pytest.fixture
def store(dcreg_home: Path) -> LocalStore:
    return LocalStore()


@pytest.fixture
def two(store, make_artifact):
    """lab/d v1 (tag first) and v2."""
    a, b = make_artifact(seed=0), make_artifact(seed=1)
    store.push(a.path, "lab/d", tags=["first"])
    store.push(b.path, "lab/d")
    return a, b


def _exit1(*args) -> str:
    code, out, err = dcreg(*args)
    assert code == 1, (args, code, out, err)
    one_line_error(err)
    return err


# ------------------------------------------------------------------ 2: outputs inside the store
@pytest.mark.parametrize(
    "where",
    ["", "repos/lab/d/versions/v9", "repos/lab/d/versions", "blobs/sha256/zz", "snapshots/x", "tmp/y"],
)
def test_pull_into_the_store_is_refused_and_store_unchanged(store, two, where):
    before = tree_state(store.root)
    err = _exit1("pull", "lab/d", "-o", store.root / where)
    assert "inside the store" in err
    assert tree_state(store.root) == before


def test_pull_into_the_store_through_a_symlink_is_refused(store, two, tmp_path):
    (tmp_path / "link").symlink_to(store.root / "repos")
    before = tree_state(store.root)
    assert "inside the store" in _exit1("pull", "lab/d", "-o", tmp_path / "link" / "x")
    assert tree_state(store.root) == before


def test_no_output_of_any_command_lands_inside_the_store(store, two, make_artifact):
    before = {k: v for k, v in tree_state(store.root).items() if not k.startswith("snapshots")}
    assert "inside the store" in _exit1(
        "export", "lab/d", "--format", "npz", "-o", store.root / "repos" / "x.npz"
    )
    assert "inside the store" in _exit1(
        "import",
        two[0].path / "data.safetensors",
        "--format",
        "npz",
        "--dataset",
        "digits",
        "-o",
        store.root / "imp",
    )
    with pytest.raises(OutputPathError, match="inside the store"):
        make_artifact(out=store.root / "repos" / "lab" / "d" / "versions" / "v9")
    after = {k: v for k, v in tree_state(store.root).items() if not k.startswith("snapshots")}
    assert after == before  # (export opened the version: a snapshot, a derived cache, appeared)


def _litter(root: Path) -> None:
    """Put unexpected entries everywhere in a store's tree."""
    (root / "stray.txt").write_text("x")
    (root / "repos" / "lab" / "d" / "versions" / "v7").mkdir()  # a dir shaped like a version
    (root / "repos" / "lab" / "d" / "versions" / "notes").write_text("x")
    (root / "repos" / "lab" / "stray").write_text("x")  # a file where a repo goes
    (root / "repos" / "UPPER").mkdir()  # not a valid namespace
    (root / "repos" / "lab" / "d" / "annotations" / "v1").mkdir(parents=True)
    (root / "repos" / "lab" / "d" / "annotations" / "v1" / "bad.json").write_text("{")
    (root / "blobs" / "sha256" / "zz").mkdir()
    (root / "blobs" / "sha256" / "ab" / ("ab" + "0" * 62)).mkdir(parents=True)  # dir as a blob
    (root / "snapshots" / "not-a-digest").mkdir()
    (root / "blobs" / "odd").write_text("x")


def test_every_operation_tolerates_unexpected_entries(store, two, make_artifact, tmp_path):
    a, b = two
    _litter(store.root)
    # the pulled-into-versions case of the issue: a whole artifact directory inside versions/
    shutil.copytree(a.path, store.root / "repos" / "lab" / "d" / "versions" / "v3")
    assert [i.version for i in store.list(all_versions=True)] == [1, 2]
    assert store.tags("lab/d") == {"first": 1, "latest": 2}
    report = store.verify_all()
    assert report.ok and len(report.checks) == 2
    text = "\n".join(report.anomalies)
    for odd in (
        "stray.txt",
        "versions/v7",
        "versions/v3",
        "versions/notes",
        "repos/lab/stray",
        "repos/UPPER",
        "blobs/sha256/zz",
        "not-a-digest",
        "bad.json",
        "blobs/odd",
    ):
        assert odd in text, (odd, text)
    assert store.push(make_artifact(seed=5).path, "lab/d").version == 8  # v3, v7 in the way
    gc = store.gc(dry_run=False)
    assert gc.blobs == [] and any("zz" in s for s in gc.skipped)
    assert (store.root / "blobs" / "sha256" / "zz").is_dir()  # not ours: never deleted
    assert store.pull("lab/d@v1", tmp_path / "out").is_dir()
    code, out, _ = dcreg("verify", "--all")
    assert code == 0 and "anomaly: unexpected entry: stray.txt" in out
    assert dcreg("list")[0] == 0 and dcreg("show", "lab/d")[0] == 0


# --------------------------------------------------------------- 3: control characters in names
@pytest.mark.parametrize(
    "bad", ["lab/d\n", "lab/d\r", "lab\n/d", "lab/d\x00", "lab/d\t", "lab/d\x1b[31m", "lab/d\u0085"]
)
def test_names_with_control_characters_are_refused(store, make_artifact, bad):
    art = make_artifact()
    with pytest.raises(InvalidNameError):
        store.push(art.path, bad)
    _exit1("push", art.path, "--name", bad)
    assert not (store.root / "repos").exists() or store.list() == []


@pytest.mark.parametrize("bad", ["first\n", "fi\nrst", "first\x00", "first\t"])
def test_tags_with_control_characters_are_refused(store, two, bad):
    before = tree_state(store.root)
    _exit1("tag", "lab/d@v1", bad)
    _exit1("push", two[0].path, "--name", "lab/d", "--tag", bad)
    _exit1("show", f"lab/d@{bad}")
    assert tree_state(store.root) == before
    assert store.tags("lab/d") == {"first": 1, "latest": 2}


@pytest.mark.parametrize(
    "bad", ["lab/d\n", "lab/d@v1\n", "lab/d@first\n", "lab/d@sha256:ab\n", "./x\n", "hf://datasets/o/n\n"]
)
def test_refs_with_control_characters_are_refused(two, bad):
    with pytest.raises(InvalidReferenceError):
        parse_ref(bad)
    _exit1("show", bad)


# ------------------------------------------------------------------ 4: directories vs names
def test_a_directory_named_like_a_store_entry_never_shadows_it(
    store, two, make_artifact, tmp_path, monkeypatch
):
    a, b = two
    other = make_artifact(seed=9, out=tmp_path / "me-d")
    monkeypatch.chdir(tmp_path)
    shutil.copytree(other.path, tmp_path / "lab" / "d")  # ./lab/d is an artifact directory
    for cmd in ("show", "verify", "card"):
        code, out, err = dcreg(cmd, "lab/d", "--json")
        assert code == 0, err
        assert other.digest not in out and "lab/d@v2" in out, (cmd, out)
        code, out, _ = dcreg(cmd, "./lab/d", "--json")
        assert code == 0 and (other.digest in out or "lab/d" in out), (cmd, out)
    code, out, err = dcreg("export", "lab/d", "--format", "npz", "-o", tmp_path / "o.npz", "--json")
    assert code == 0 and json.loads(out)["digest"] == b.digest, err
    code, out, err = dcreg("export", "./lab/d", "--format", "npz", "-o", tmp_path / "p.npz", "--json")
    assert code == 0 and json.loads(out)["digest"] == other.digest, err
    res = resolve_ref("lab/d")
    assert res.info is not None and res.info.digest == b.digest
    res = resolve_ref("./lab/d")
    assert res.info is None and res.open().digest == other.digest
    assert resolve_ref("me-d").open().digest == other.digest  # one component: a directory


def test_harness_eval_uses_the_one_rule(store, two, make_artifact, tmp_path, monkeypatch):
    """`harness eval lab/d` evaluates (and records on) the stored version, never ./lab/d."""
    import harness.engine.evaluate as ev
    from harness.cli import main

    a, b = two
    other = make_artifact(seed=9, out=tmp_path / "lab" / "d")
    monkeypatch.chdir(tmp_path)
    seen = []

    def fake_evaluate(artifact, protocol, ref, **kw):
        seen.append((artifact.digest, ref))
        raise UserError("stop here")

    monkeypatch.setattr(ev, "evaluate", fake_evaluate)
    for ref, want in (("lab/d", (b.digest, "lab/d@v2")), ("./lab/d", (other.digest, "lab/d"))):
        with pytest.raises(SystemExit) as exc:
            main(["eval", ref, "--protocol", "dc-noaug", "--device", "cpu"])
        assert exc.value.code == 1
        assert seen[-1] == want


@pytest.mark.parametrize("device", ["bogus", "cuda:x", "cpu\n", "cuda:99999", ""])
def test_harness_device_is_validated_up_front(make_artifact, device, capsys):
    from harness.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["eval", str(make_artifact().path), "--device", device])
    err = capsys.readouterr().err
    assert exc.value.code == 1 and err.count("\n") == 1 and "Traceback" not in err, err


# ----------------------------------------------------------------- 7: unusable output paths
def test_pull_output_paths_that_cannot_be_written(store, two, tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    before = tree_state(store.root)
    entries = sorted(p.name for p in tmp_path.iterdir())
    for out, needle in [
        (tmp_path / ("n" * 300), "longer than"),
        (tmp_path / "file", "not a directory"),
        (tmp_path / "file" / "sub", "regular file"),
        (tmp_path / "file" / "a" / "b", "regular file"),
        (tmp_path / "dangling", "dangling"),
        (tmp_path / "x\ny", "control characters"),
    ]:
        err = _exit1("pull", "lab/d", "-o", out)
        assert needle in err, (out, err)
    assert tree_state(store.root) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == entries


def test_pull_output_exists_is_a_named_error(store, two, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "f").write_text("mine")
    with pytest.raises(OutputExistsError):
        store.pull("lab/d", tmp_path / "busy")
    assert (tmp_path / "busy" / "f").read_text() == "mine"


@pytest.mark.parametrize(
    "term",
    [
        "ipc<=99999999999999999999999",
        "ipc=-99999999999999999999",
        "seed>9223372036854775808",
        "ipc=1_0",
        "ipc=١٢",
        "ipc=1\n",
        "dataset=x\x00",
        "dataset\n=x",
    ],
)
def test_bad_query_numbers_and_characters_exit_1(store, two, term):
    assert "bad query" in _exit1("list", term)


def test_largest_64_bit_query_numbers_work(store, two):
    code, out, _ = dcreg("list", "seed<=9223372036854775807", "--json")
    assert code == 0 and len(json.loads(out)) == 1


def test_non_utf8_names_exit_1_not_2(store, two, make_artifact, tmp_path):
    bad = os.fsdecode(b"caf\xe9")
    assert "UTF-8" in _exit1("pull", "lab/d", "-o", tmp_path / bad)
    assert "UTF-8" in _exit1("show", "./" + bad)
    assert _exit1("show", "lab/" + bad)
    art = make_artifact(seed=3)
    os.rename(art.path, tmp_path / bad)  # pushing FROM a non-UTF-8 directory is fine
    code, out, err = dcreg("push", tmp_path / bad, "--name", "lab/d")
    assert code == 0, err
    code, _, err = dcreg("push", tmp_path / (bad + "-missing"), "--name", "lab/d")
    assert code == 1 and "\\udce9" in err and err.count("\n") == 1


# -------------------------------------------------------------- 7: damaged tag-log lines
def test_tag_log_line_missing_fields_is_skipped_with_a_warning(store, two):
    log = store.root / "repos" / "lab" / "d" / "tags.log"
    with open(log, "a") as f:
        f.write('{"action": "set", "version": 1}\n')  # no tag
        f.write('{"action": "set", "tag": "x", "version": "1"}\n')  # version not an int
        f.write("[1, 2]\n")
        f.write('{"action": "set", "tag": "ok", "version": 2, "digest": "d", "ts": "t"}\n')
    code, out, err = dcreg("tags", "lab/d")
    assert code == 0 and "ok  lab/d@v2" in out and "first  lab/d@v1" in out
    assert "dcreg: warning:" in err and "tags.log line" in err
    code, out, err = dcreg("list", "--json")
    assert code == 0 and json.loads(out)[0]["tags"] == ["latest", "ok"]
    code, out, _ = dcreg("verify", "--all")
    assert code == 0 and out.count("anomaly:") == 3 and "tags.log line" in out


# ------------------------------------------------------------------ 7: read-only stores
@pytest.fixture
def read_only(store, two, tmp_path):
    """The populated store made read-only: a read-only tmpfs remount as root, chmod otherwise."""
    if os.geteuid() != 0:
        for p in [store.root, *store.root.rglob("*")]:
            if not p.is_symlink():
                os.chmod(p, 0o555 if p.is_dir() else 0o444)
        yield store
        for p in [store.root, *store.root.rglob("*")]:
            if p.is_dir() and not p.is_symlink():
                os.chmod(p, 0o755)
        return
    with tmpfs(tmp_path / "ro-mnt", "16m") as mnt:
        shutil.copytree(store.root, mnt / "store", symlinks=True)
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True, capture_output=True)
        yield LocalStore(mnt / "store")


@contextlib.contextmanager
def tmpfs(mnt: Path, size: str):
    """A tmpfs of ``size`` mounted at ``mnt`` (needs root; skips the test if mounting fails)."""
    mnt.mkdir()
    if (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("cannot mount a tmpfs")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_read_only_store_reads_work_and_writes_say_read_only(read_only, two, tmp_path):
    store = read_only
    spec = ["--store", store.root]
    assert not os.access(store.root, os.W_OK)
    assert store.read_only
    for args in (
        ["list"],
        ["list", "ipc<=2"],
        ["show", "lab/d"],
        ["tags", "lab/d"],
        ["card", "lab/d"],
        ["verify", "lab/d@first"],
        ["verify", "--all"],
        ["tags", "lab/d", "--log"],
        ["gc"],
    ):
        code, out, err = dcreg(*args, *spec)
        assert code == 0, (args, err)
    code, out, _ = dcreg("pull", "lab/d@first", "-o", tmp_path / "out", *spec)
    assert code == 0 and (tmp_path / "out" / "manifest.json").is_file()
    assert store.open("lab/d").digest == two[1].digest
    before = tree_state(store.root)
    for args in (
        ["push", two[0].path, "--name", "lab/e"],
        ["tag", "lab/d@v2", "new"],
        ["untag", "lab/d", "first"],
        ["rm", "lab/d@v2"],
        ["gc", "--no-dry-run"],
    ):
        assert "read-only" in _exit1(*args, *spec), args
    with pytest.raises(StoreReadOnlyError):
        store.annotate("lab/d", "eval", {"x": 1})
    assert tree_state(store.root) == before


# ----------------------------------------------------------------------- 7: full disks
def _enospc_after(monkeypatch, budget: int) -> None:
    """Make writes through os/file objects fail with ENOSPC once ``budget`` bytes are written."""
    import builtins

    real_open = builtins.open
    state = {"left": budget}

    class Full:
        def __init__(self, f):
            self._f = f

        def write(self, data):
            state["left"] -= len(data)
            if state["left"] < 0:
                raise OSError(errno.ENOSPC, "No space left on device", getattr(self._f, "name", None))
            return self._f.write(data)

        def __getattr__(self, name):
            return getattr(self._f, name)

        def __enter__(self):
            self._f.__enter__()
            return self

        def __exit__(self, *exc):
            return self._f.__exit__(*exc)

    def fake_open(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        return Full(f) if any(c in mode for c in "wax") else f

    monkeypatch.setattr(builtins, "open", fake_open)


def test_full_disk_during_push_names_the_path_and_leaves_nothing(store, two, make_artifact, monkeypatch):
    big = make_artifact(seed=4, ipc=20)
    before = tree_state(store.root)
    _enospc_after(monkeypatch, 1000)
    with pytest.raises(DiskFullError, match=rf"{store.root}: no space left"):
        store.push(big.path, "lab/d", tags=["big"])
    monkeypatch.undo()
    assert tree_state(store.root) == before  # no new blob, version, tag or temp file
    assert [i.version for i in store.list(all_versions=True)] == [1, 2]


def test_full_disk_during_pull_leaves_nothing(store, two, tmp_path, monkeypatch):
    entries = sorted(p.name for p in tmp_path.iterdir())
    _enospc_after(monkeypatch, 1000)
    with pytest.raises(DiskFullError, match=str(tmp_path / "out")):
        store.pull("lab/d", tmp_path / "out")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == entries


def test_full_tmpfs_push_is_exit_1_with_the_path(make_artifact, tmp_path):
    """A real full filesystem (a tiny tmpfs; needs root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    with tmpfs(tmp_path / "tiny", "64k") as mnt:
        big = make_artifact(seed=4, ipc=40)  # ~100 KiB of pixels
        code, out, err = dcreg("push", big.path, "--name", "lab/big", "--store", mnt / "s")
        assert code == 1, err
        one_line_error(err)
        assert "no space left" in err and str(mnt / "s") in err
        store = LocalStore(mnt / "s")
        assert store.list() == [] and list((mnt / "s" / "tmp").iterdir()) == []
        assert all(p.is_dir() for p in (mnt / "s" / "blobs").rglob("*"))  # no blob left


# ------------------------------------------------------------------------ fsio on its own
def test_staged_dir_leaves_nothing_on_error_and_refuses_foreign_replacements(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with fsio.staged_dir(target) as tmp:
            (tmp / "a").write_text("x")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with fsio.staged_dir(target) as tmp:
        (tmp / "a").write_text("x")
    assert (target / "a").read_text() == "x"
    with pytest.raises(OutputExistsError):
        with fsio.staged_dir(target, overwrite=True) as tmp:  # not ours to replace by default
            pass
    with fsio.staged_dir(target, overwrite=True, replace_ok=lambda p: True) as tmp:
        (tmp / "b").write_text("y")
    assert sorted(p.name for p in target.iterdir()) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_staged_file_overwrites_only_regular_files(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(OutputExistsError):
        with fsio.staged_file(tmp_path / "d", overwrite=True) as tmp:
            tmp.write_text("x")
    with fsio.staged_file(tmp_path / "f") as tmp:
        tmp.write_text("1")
    with fsio.staged_file(tmp_path / "f", overwrite=True) as tmp:
        tmp.write_text("2")
    assert (tmp_path / "f").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "f"]


@pytest.mark.parametrize(
    "code, cls",
    [
        (errno.ENOSPC, DiskFullError),
        (errno.EDQUOT, DiskFullError),
        (errno.EROFS, ReadOnlyError),
        (errno.EACCES, ReadOnlyError),
        (errno.ENAMETOOLONG, OutputPathError),
        (errno.ENOTDIR, OutputPathError),
    ],
)
def test_os_errors_become_named_user_errors(code, cls):
    err = fsio.os_error_to_user(OSError(code, os.strerror(code), "/some/path"))
    assert isinstance(err, cls) and "/some/path" in str(err) and "\n" not in str(err)
    assert fsio.os_error_to_user(OSError(errno.EBADF, "x")) is None


# ------------------------------------------------------------------- 12: lazy CLI imports
def test_dcreg_list_show_tag_do_not_import_numpy_or_torch(store, two):
    code = (
        "import sys; from dcregistry.cli import cli; from dcregistry.cli.common import run_cli;"
        "rcs = [run_cli(cli, 'dcreg', a) for a in (['list', 'ipc<=9'], ['show', 'lab/d'],"
        " ['tag', 'lab/d@v2', 'x'], ['tags', 'lab/d'])];"
        "heavy = sorted(m for m in ('numpy', 'torch', 'PIL', 'safetensors', 'jsonschema',"
        " 'dcregistry.formats', 'dcregistry.card', 'dcregistry.artifact') if m in sys.modules);"
        "print(rcs, heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "DCREG_HOME": str(store.root)},
        check=True,
    ).stdout
    assert out.strip().splitlines()[-1] == "[0, 0, 0, 0] []"


# ------------------------------------------------------ 12: list's recorded directory signatures
def test_list_fast_path_sees_every_change(store, two, make_artifact):
    """``list`` answers unchanged names from signatures recorded in the index; any push, rm or
    hand-made change of a versions directory must still show up."""
    vdir = store.root / "repos" / "lab" / "d" / "versions"
    old = 1_600_000_000
    os.utime(vdir, (old, old))  # settled: its signature is recorded by the next listing
    assert [i.version for i in store.list(all_versions=True)] == [1, 2]
    assert store.list(all_versions=True)[-1].version == 2  # answered from the signature
    store.push(make_artifact(seed=7).path, "lab/d")
    os.utime(vdir, (old + 5, old + 5))
    assert [i.version for i in store.list(all_versions=True)] == [1, 2, 3]
    os.replace(vdir / "v3", store.root / "v3-moved-away")  # by hand, no store API
    os.utime(vdir, (old + 9, old + 9))
    assert [i.version for i in store.list(all_versions=True)] == [1, 2]
    assert store.tags("lab/d")["latest"] == 2
