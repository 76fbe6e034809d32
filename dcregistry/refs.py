"""Artifact names and references.

A name is ``namespace/name`` with lowercase ``[a-z0-9._-]`` parts. A reference selects one version:
``ns/name`` (latest), ``ns/name@v3``, ``ns/name@TAG``, ``ns/name@sha256:<prefix>``, a local
artifact directory, or ``hf://datasets/ORG/NAME[@rev]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .errors import InvalidNameError, InvalidReferenceError

_PART = r"[a-z0-9][a-z0-9._-]{0,95}"
_NAME_RE = re.compile(rf"^{_PART}/{_PART}$")
_TAG_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_VERSION_RE = re.compile(r"^v([1-9][0-9]{0,8})$")
_DIGEST_RE = re.compile(r"^sha256:([0-9a-f]{4,64})$")
LATEST = "latest"


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid ``namespace/name``; raise InvalidNameError otherwise."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise InvalidNameError(
            f"invalid artifact name {name!r}: use 'namespace/name' with lowercase letters, digits,"
            " '.', '_' or '-' (no '..', no leading '/', no spaces or uppercase)")
    return name


def validate_tag(tag: str) -> str:
    """Return ``tag`` if usable as a tag (not a version number or digest); raise otherwise."""
    if not isinstance(tag, str) or not _TAG_RE.match(tag) or ".." in tag:
        raise InvalidNameError(
            f"invalid tag {tag!r}: use lowercase letters, digits, '.', '_' or '-'")
    if _VERSION_RE.match(tag) or tag.startswith("sha256"):
        raise InvalidNameError(f"invalid tag {tag!r}: it would read as a version or a digest")
    return tag


@dataclass(frozen=True)
class Ref:
    """A parsed reference."""

    kind: Literal["name", "path", "hub"]
    name: str | None = None  # ns/name (kind name) or ORG/NAME (kind hub)
    selector: Literal["latest", "version", "tag", "digest"] = "latest"
    value: str | int | None = None  # version number, tag, digest prefix or hub revision
    path: Path | None = None

    def __str__(self) -> str:
        if self.kind == "path":
            return str(self.path)
        if self.kind == "hub":
            return f"hf://datasets/{self.name}" + (f"@{self.value}" if self.value else "")
        suffix = {"latest": "", "version": f"@v{self.value}", "tag": f"@{self.value}",
                  "digest": f"@sha256:{self.value}"}[self.selector]
        return f"{self.name}{suffix}"


def parse_ref(text: str) -> Ref:
    """Parse a reference string; an existing directory with a manifest.json is a path ref."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidReferenceError("empty reference: give ns/name[@v3|@tag|@sha256:..] or a path")
    if text.startswith("hf://"):
        return _parse_hub(text)
    p = Path(text).expanduser()
    if p.is_dir():
        return Ref("path", path=p)
    if text.startswith(("/", ".", "~")) or text.endswith("/") or "\\" in text:
        raise InvalidReferenceError(
            f"{text!r} is not an artifact directory (no such directory) nor a valid name")
    name, _, sel = text.partition("@")
    validate_name(name)
    if not _:
        return Ref("name", name)
    if m := _VERSION_RE.match(sel):
        return Ref("name", name, "version", int(m.group(1)))
    if m := _DIGEST_RE.match(sel):
        return Ref("name", name, "digest", m.group(1))
    if sel == LATEST:
        return Ref("name", name)
    try:
        validate_tag(sel)
    except InvalidNameError:
        raise InvalidReferenceError(
            f"bad selector {sel!r} in {text!r}: use @v<N>, @<tag> or @sha256:<hex prefix>"
        ) from None
    return Ref("name", name, "tag", sel)


def _parse_hub(text: str) -> Ref:
    body = text[len("hf://"):]
    if not body.startswith("datasets/"):
        raise InvalidReferenceError(f"{text!r}: hub references look like hf://datasets/ORG/NAME")
    repo, _, rev = body[len("datasets/"):].partition("@")
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$", repo) or ".." in repo:
        raise InvalidReferenceError(f"{text!r}: hub repo must be ORG/NAME")
    return Ref("hub", repo, "latest" if not rev else "tag", rev or None)
