"""Version selection: which version of a name a reference picks. The one definition every store
uses (the local store over its version files, the Hub store over its ``vN`` tags).

A store lists the live versions of a name, each with its number, digest and current tags
(``latest`` included on the highest), and :func:`select_version` applies the reference's
selector (:mod:`dcregistry.refs`): ``latest`` is the highest version; ``vN`` that version; a
tag the highest version carrying it; ``sha256:<prefix>`` the one version whose digest starts
with the prefix (AmbiguousReferenceError when several versions do, even if they hold the same
digest). Anything else is a NotFoundError naming what exists.

Digests are read only for a digest prefix, so a store may compute them lazily (the Hub store
reads a manifest per version only then).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from ..errors import AmbiguousReferenceError, NotFoundError
from ..refs import Ref

__all__ = ["Selectable", "Candidate", "select_version", "tag_map", "version_list"]


class Selectable(Protocol):
    """What selection reads of a version (a :class:`~.base.VersionInfo` is one)."""

    @property
    def version(self) -> int: ...

    @property
    def digest(self) -> str: ...  # sha256:<hex>; read only to match a digest prefix

    @property
    def tags(self) -> Sequence[str]: ...  # its current tags, ``latest`` on the highest version


@dataclass(frozen=True)
class Candidate:
    """A plain :class:`Selectable`."""

    version: int
    digest: str
    tags: tuple[str, ...] = ()


_V = TypeVar("_V", bound=Selectable)


def version_list(numbers: Iterable[int]) -> str:
    """``v1, v2, v5`` (``none`` when empty), as messages list versions."""
    return ", ".join(f"v{v}" for v in sorted(numbers)) or "none"


def tag_map(versions: Iterable[Selectable]) -> dict[str, int]:
    """tag -> the highest version carrying it, sorted by tag."""
    out: dict[str, int] = {}
    for c in versions:
        for t in c.tags:
            out[t] = max(out.get(t, 0), c.version)
    return dict(sorted(out.items()))


def select_version(
    versions: Iterable[_V], ref: Ref, *, was_removed: Callable[[int], bool] | None = None
) -> _V:
    """The version of ``ref.name`` that ``ref``'s selector picks among ``versions`` (the live
    ones); NotFoundError or AmbiguousReferenceError otherwise. ``was_removed(n)`` says whether a
    missing ``vN`` was removed (the message then says so)."""
    name = ref.name
    by_number = {c.version: c for c in versions}
    if not by_number:
        raise NotFoundError(f"{name} has no live version")
    if ref.selector == "latest":
        return by_number[max(by_number)]
    if ref.selector == "version":
        number = int(ref.value)  # type: ignore[arg-type]
        if number not in by_number:
            removed = was_removed is not None and was_removed(number)
            raise NotFoundError(
                f"{name} has no version v{number}"
                + (" (it was removed)" if removed else "")
                + f"; live versions: {version_list(by_number)}"
            )
        return by_number[number]
    if ref.selector == "tag":
        tags = tag_map(by_number.values())
        if ref.value not in tags:
            have = ", ".join(f"{t}->v{v}" for t, v in tags.items()) or "none"
            raise NotFoundError(f"{name} has no tag {ref.value!r} (tags: {have})")
        return by_number[tags[str(ref.value)]]
    if ref.selector == "digest":
        prefix = str(ref.value)
        hits = [by_number[v] for v in sorted(by_number) if _hex(by_number[v].digest).startswith(prefix)]
        if not hits:
            raise NotFoundError(
                f"no version of {name} has a digest starting with "
                f"sha256:{prefix} (live versions: {version_list(by_number)})"
            )
        if len(hits) > 1:
            raise AmbiguousReferenceError(
                f"sha256:{prefix} matches {len(hits)} versions of {name} "
                f"({', '.join(f'v{c.version}={_hex(c.digest)[:12]}' for c in hits)}); give more hex "
                "digits"
            )
        return hits[0]
    raise AssertionError(f"unknown selector {ref.selector!r}")  # refs.Ref makes no other


def _hex(digest: str) -> str:
    return digest[len("sha256:") :] if digest.startswith("sha256:") else digest
