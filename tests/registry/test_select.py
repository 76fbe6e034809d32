"""Version selection, query matching and store capabilities, each defined once
(:mod:`dcregistry.store.select`, :mod:`dcregistry.store.query`, :mod:`dcregistry.store.base`):
the selection function on a table of selectors, the Python query matcher against the SQL the
local index runs, and commands that refuse a store lacking a capability before any work."""

from __future__ import annotations

import sqlite3
from typing import Any, NoReturn

import pytest

from dcregistry import store as store_pkg
from dcregistry.errors import AmbiguousReferenceError, NotFoundError, UnsupportedOperationError
from dcregistry.refs import Ref, parse_name_ref
from dcregistry.registry import Registry
from dcregistry.store import (
    AnnotatingStore,
    LocalStore,
    MaintainableStore,
    Store,
    VersionInfo,
    WritableStore,
)
from dcregistry.store.index import _FIELD_COLUMNS, Index, IndexRow
from dcregistry.store.query import QUERY_FIELDS, glob_match, parse_term
from dcregistry.store.select import Candidate, select_version

from .test_cli_store import dcreg, one_line_error

D1 = "sha256:" + "ab12" + "0" * 60
D2 = "sha256:" + "ab34" + "1" * 60
D3 = "sha256:" + "cd56" + "2" * 60
VERSIONS = [
    Candidate(1, D1, ("paper",)),
    Candidate(2, D2, ()),
    Candidate(4, D3, ("latest", "stable")),
]


@pytest.mark.parametrize(
    ("ref", "version"),
    [
        ("lab/x", 4),
        ("lab/x@latest", 4),
        ("lab/x@v2", 2),
        ("lab/x@paper", 1),
        ("lab/x@stable", 4),
        ("lab/x@sha256:ab12", 1),
        (f"lab/x@{D2}", 2),
        ("lab/x@sha256:cd56", 4),
    ],
)
def test_selection_picks(ref: str, version: int) -> None:
    assert select_version(VERSIONS, parse_name_ref(ref)).version == version


@pytest.mark.parametrize(
    ("ref", "error", "message"),
    [
        ("lab/x@v3", NotFoundError, "lab/x has no version v3; live versions: v1, v2, v4"),
        (
            "lab/x@nightly",
            NotFoundError,
            "lab/x has no tag 'nightly' (tags: latest->v4, paper->v1, stable->v4)",
        ),
        (
            "lab/x@sha256:ffff",
            NotFoundError,
            "no version of lab/x has a digest starting with sha256:ffff (live versions: v1, v2, v4)",
        ),
        ("lab/x@sha256:ab00", NotFoundError, "digest starting with sha256:ab00"),
    ],
)
def test_selection_errors(ref: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        select_version(VERSIONS, parse_name_ref(ref))
    assert message in str(info.value)


def test_ambiguous_prefix_names_the_candidates() -> None:
    with pytest.raises(AmbiguousReferenceError) as info:
        select_version(VERSIONS, Ref("name", "lab/x", "digest", "ab"))
    assert str(info.value) == (
        "sha256:ab matches 2 versions of lab/x (v1=ab1200000000, v2=ab3411111111); give more hex digits"
    )
    # two versions holding the same digest are still two versions: ambiguous, as in both stores
    same = [Candidate(1, D1), Candidate(2, D1, ("latest",))]
    with pytest.raises(AmbiguousReferenceError, match="matches 2 versions"):
        select_version(same, Ref("name", "lab/x", "digest", D1[7:]))


def test_a_tag_on_several_versions_picks_the_highest_and_removed_versions_are_named() -> None:
    # (a Hub tag names a commit, which several vN tags may share)
    shared = [Candidate(1, D1, ("paper",)), Candidate(2, D1, ("latest", "paper"))]
    assert select_version(shared, Ref("name", "lab/x", "tag", "paper")).version == 2
    with pytest.raises(NotFoundError, match=r"has no version v3 \(it was removed\); live versions: v1, v2"):
        select_version(shared, Ref("name", "lab/x", "version", 3), was_removed=lambda v: v == 3)


def test_digests_are_read_only_for_a_digest_prefix() -> None:
    class Lazy:
        def __init__(self, version: int, tags: tuple[str, ...]) -> None:
            self.version, self.tags = version, tags

        @property
        def digest(self) -> NoReturn:
            raise AssertionError("digest read")

    lazy = [Lazy(1, ("paper",)), Lazy(2, ("latest",))]
    assert select_version(lazy, Ref("name", "lab/x")).version == 2
    assert select_version(lazy, Ref("name", "lab/x", "version", 1)).version == 1
    assert select_version(lazy, Ref("name", "lab/x", "tag", "paper")).version == 1


# ------------------------------------------------------------------------------------- queries
def _row(name: str, version: int, **md: Any) -> IndexRow:
    created = md.pop("pushed", None)
    return IndexRow(name, version, f"sha256:{version:064x}", created, md)


ROWS = [
    _row("lab/a", 1, dataset="cifar10", method="dc", ipc=10, num_classes=10, seed=0, license="mit"),
    _row("lab/a", 2, dataset="cifar10", method="dm", ipc=50, seed=1, pixel_space={"kind": "unit"}),
    _row("lab/b-x", 1, dataset="mnist", ipc=1, label_kind="soft", created_at="2026-02-01T00:00:00Z"),
    _row("lab/B", 3, dataset="mnist", ipc=True, method=7, pixel_space="unit", pushed="2026-03-01T00:00:00Z"),
    _row("zz/c", 1),  # a damaged version: no metadata at all
]
TERMS = [
    "dataset=cifar10",
    "dataset!=cifar10",
    "method!=dc",
    "ipc>=10",
    "ipc<10",
    "ipc!=1",
    "k=1",
    "seed=0",
    "num_classes!=10",
    "name=lab/*",
    "name!=lab/*",
    "name=lab/[ab]*",
    "name=lab/[^a]*",
    "name=lab/[!a]*",
    "name=lab/[a-c]",
    "name=lab/[]a]",
    "name=lab/?",
    "name=lab/[",
    "name!=lab/[",
    "name=*-*",
    "license!=m*",
    "license!=mit",
    "pixel=unit",
    "pixel!=unit",
    "label_kind=soft",
    "made_at>=2026-01",
    "created_at<2026-04",
    "created_at!=2026-03-01T00:00:00Z",
    "digest=0000",
    "digest!=0000",
    "version>=2",
    "v=v1",
    "method=7",
]


@pytest.mark.parametrize("text", TERMS)
def test_python_matcher_selects_what_the_index_selects(text: str) -> None:
    term = parse_term(text)
    with Index(None) as idx:
        idx.upsert(ROWS)
        by_sql = [(r.name, r.version) for r in idx.query([term])]
    by_python = sorted((r.name, r.version) for r in ROWS if term.matches(r))
    assert by_python == by_sql
    # a VersionInfo (what the Hub store matches) reads the same fields as an index row
    infos = [VersionInfo(r.name, r.version, r.digest, (), r.created_at, r.metadata) for r in ROWS]
    assert sorted((i.name, i.version) for i in infos if term.matches(i)) == by_sql


def test_the_index_has_a_column_per_query_field() -> None:
    assert set(_FIELD_COLUMNS) == set(QUERY_FIELDS)
    with Index(None) as idx:
        columns = {row[1]: row[2] for row in idx.conn.execute("PRAGMA table_info(versions)")}
    assert columns.pop("metadata") == "TEXT"
    assert columns == {f: "INTEGER" if q.kind == "int" else "TEXT" for f, q in QUERY_FIELDS.items()}


@pytest.mark.parametrize(
    "pattern",
    [
        "*",
        "a*",
        "*c",
        "a?c",
        "[ab]*",
        "[^a]*",
        "[!a]*",
        "[]a]*",
        "[a-]*",
        "[-a]*",
        "[c-a]*",
        "a[",
        "**a*",
        "?",
    ],
)
def test_glob_is_sqlite_glob(pattern: str) -> None:
    conn = sqlite3.connect(":memory:")
    for text in ["", "a", "abc", "ABC", "bac", "]x", "-a", "!a", "a[", "ca", "a*c", "été"]:
        (want,) = conn.execute("SELECT ? GLOB ?", (text, pattern)).fetchone()
        assert glob_match(pattern, text) == bool(want), (pattern, text)


# --------------------------------------------------------------------------------- capabilities
def test_local_store_has_every_capability(tmp_path) -> None:
    store = LocalStore(tmp_path / "s")
    assert store.capabilities == {"read", "write", "annotate", "maintain"}
    assert store.require("annotate", "--record") is store


class _ReadOnlyStore(Store):
    """A store that can only read, and must not be asked anything by a refusing command."""

    location = "readonly-test:"

    def _no_work(self, *args: object, **kwargs: object) -> NoReturn:
        raise AssertionError("a command did work on a store it should have refused")

    resolve = manifest = open = pull = list = tags = tag_log = annotations = verify = verify_all = _no_work


def test_commands_refuse_a_store_without_the_capability_before_any_work(
    monkeypatch: pytest.MonkeyPatch, make_artifact, dcreg_home
) -> None:
    kinds: Registry[store_pkg.StoreKind] = Registry("store kind")
    monkeypatch.setattr(store_pkg, "STORE_KINDS", kinds)
    store_pkg.register_store("readonly-test", lambda s: s == "readonly-test:", lambda s: _ReadOnlyStore())
    store = store_pkg.get_store("readonly-test:")
    assert store.capabilities == {"read"}
    assert not isinstance(store, (WritableStore, AnnotatingStore, MaintainableStore))
    with pytest.raises(
        UnsupportedOperationError, match="push needs a store that can write, and readonly-test: cannot$"
    ):
        store.require("write", "push")
    art = make_artifact()
    for args, capability in [
        (["push", art.path, "--name", "lab/x"], "write"),
        (["tag", "lab/x@v1", "paper"], "write"),
        (["untag", "lab/x", "paper"], "write"),
        (["rm", "lab/x@v1"], "maintain"),
        (["gc", "--no-dry-run"], "maintain"),
    ]:
        code, out, err = dcreg(*args, "--store", "readonly-test:")
        assert code == 1 and out == "", (args, err)
        one_line_error(err)
        assert f"{args[0]} needs a store that can {capability}, and readonly-test: cannot" in err
    assert not dcreg_home.exists()
