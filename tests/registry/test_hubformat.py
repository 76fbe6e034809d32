"""The Hub conventions shared by the Hub client and `dcreg serve`: one definition, both directions."""

from __future__ import annotations

import pytest

from dcregistry.hubformat import commit_title, parse_commit_title, tag_version, version_tag

DIGEST = "sha256:" + "0123456789abcdef" * 4


def test_commit_titles_round_trip():
    assert commit_title(7, DIGEST) == f"dcreg v7 {DIGEST}"
    assert parse_commit_title(commit_title(7, DIGEST)) == (7, DIGEST)
    assert parse_commit_title(f"  dcreg v12 {DIGEST}\n") == (12, DIGEST)


@pytest.mark.parametrize(
    "title",
    [
        None,
        "",
        "Update README.md",
        f"dcreg v0 {DIGEST}",
        f"dcreg v01 {DIGEST}",
        f"dcreg 7 {DIGEST}",
        f"dcreg v7 {DIGEST[:-1]}",
        f"dcreg v7 {DIGEST.upper()}",
        f"dcreg v7 {DIGEST} extra",
        f"dcreg v1234567890 {DIGEST}",
    ],
)
def test_other_titles_are_not_versions(title):
    assert parse_commit_title(title) is None


def test_version_tags():
    assert version_tag(3) == "v3" and tag_version("v3") == 3
    assert tag_version("best") is None and tag_version("v0") is None and tag_version("v3x") is None
    for bad in (0, -1, True, 2.0):
        with pytest.raises(ValueError):
            version_tag(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        commit_title(1, "sha256:xyz")
