"""Version selection, defined once (:mod:`dcregistry.store.select`): the selection function
on a table of selectors."""

from __future__ import annotations

from typing import NoReturn

import pytest

from dcregistry.errors import AmbiguousReferenceError, NotFoundError
from dcregistry.refs import Ref, parse_name_ref
from dcregistry.store.select import Candidate, select_version

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
