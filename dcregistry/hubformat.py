"""How dcreg versions live in a Hugging Face Hub repository: the conventions that the Hub client
(:mod:`dcregistry.store.hub`) and ``dcreg serve`` (:mod:`dcregistry.server.backend`) share.

An artifact name ``ns/name`` is a *dataset* repository. Each version is one commit on ``main``
holding the artifact's files, ``manifest.json`` and :data:`PREVIEW_FILE` (the first rows as
parquet, for the Hub's dataset viewer). The commit title is ``dcreg vN sha256:<64 hex>``, the
commit is tagged ``vN``, and user tags are further git tags on version commits. Names, tags and
commit ids follow :mod:`dcregistry.refs`.
"""

from __future__ import annotations

import re

from .refs import VERSION_RE, is_sha256_hex, version_number

#: Hub repository type of an artifact.
REPO_TYPE = "dataset"
#: The branch whose commits are the versions.
BRANCH = "main"
#: Parquet preview pushed beside the artifact's files.
PREVIEW_FILE = "preview/train.parquet"

_TITLE_RE = re.compile(rf"dcreg ({VERSION_RE.pattern}) sha256:([0-9a-f]{{64}})")

__all__ = [
    "REPO_TYPE",
    "BRANCH",
    "PREVIEW_FILE",
    "commit_title",
    "parse_commit_title",
    "version_tag",
    "tag_version",
]


def version_tag(version: int) -> str:
    """The git tag of version ``version``: ``vN``."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"a version number is a positive int, got {version!r}")
    return f"v{version}"


def tag_version(tag: str) -> int | None:
    """``N`` if ``tag`` is a version tag ``vN``, else None (a user tag)."""
    return version_number(tag)


def commit_title(version: int, digest: str) -> str:
    """The title of the commit that holds version ``version`` with manifest digest ``digest``."""
    if not (isinstance(digest, str) and digest.startswith("sha256:") and is_sha256_hex(digest[7:])):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return f"dcreg {version_tag(version)} {digest}"


def parse_commit_title(title: str | None) -> tuple[int, str] | None:
    """``(version, digest)`` of a dcreg commit title (surrounding blanks ignored), else None."""
    m = _TITLE_RE.fullmatch((title or "").strip())
    if not m:
        return None
    version = version_number(m.group(1))
    assert version is not None  # the pattern is VERSION_RE's
    return version, f"sha256:{m.group(3)}"
