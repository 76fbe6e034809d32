"""Artifact names and references: the only place their syntax is defined.

A name is ``namespace/name`` with lowercase ``[a-z0-9._-]`` parts (full match: no control
characters, no trailing newline, no ``..``). A reference selects one version: ``ns/name``
(latest), ``ns/name@v3``, ``ns/name@TAG``, ``ns/name@sha256:<prefix>``, a local artifact
directory, or ``hf://datasets/ORG/NAME[@rev]``.

The one rule for references vs directories (:func:`parse_ref`): text that has the shape of a
store reference ALWAYS means the store, even when a directory of that name exists; a directory
is written as a path: ``./me/d``, ``/abs/dir``, ``~/dir``, or anything that cannot be a name
(a single component like ``pulled``, three components, a trailing ``/``). So a directory can
never shadow a stored version, and what is resolved never depends on the working directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeGuard

from .errors import InvalidNameError, InvalidReferenceError

_PART = r"[a-z0-9][a-z0-9._-]{0,95}"
_NAME_RE = re.compile(rf"{_PART}/{_PART}")
_TAG_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_VERSION_RE = VERSION_RE = re.compile(r"v([1-9][0-9]{0,8})")  # vN, N < 10^9
_DIGEST_RE = re.compile(r"sha256:([0-9a-f]{4,64})")
_HUB_REPO_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
_HUB_REV_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,254}")
_COMMIT_RE = re.compile(r"[0-9a-f]{40}")
_HEX64_RE = re.compile(r"[0-9a-f]{64}")
#: A file name inside an artifact (manifest entries): one path component, bounded length.
_FILE_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
LATEST = "latest"
#: Longest reference text accepted (names are at most 193 characters, digests 71).
MAX_REF_LEN = 4096

__all__ = [
    "Ref",
    "LATEST",
    "parse_ref",
    "parse_name_ref",
    "is_name_ref",
    "validate_name",
    "validate_tag",
    "version_number",
    "has_control_chars",
    "is_commit_id",
    "is_sha256_hex",
    "is_hub_repo",
    "is_artifact_file_name",
    "text_problem",
]


def has_control_chars(text: str) -> bool:
    """Whether ``text`` holds a C0/C1 control character (newline, tab, NUL, ESC ...)."""
    return any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text)


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be a name, ref, query or path (control characters, not UTF-8), or None."""
    if has_control_chars(text):
        return "contains control characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    return None


def _shown(text: object) -> str:
    return repr(text)[:120]


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid ``namespace/name``; raise InvalidNameError otherwise."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or ".." in name:
        raise InvalidNameError(
            f"invalid artifact name {_shown(name)}: use 'namespace/name' with lowercase letters, "
            "digits, '.', '_' or '-' (no '..', no leading '/', no spaces, uppercase or control "
            "characters)"
        )
    return name


def validate_tag(tag: str) -> str:
    """Return ``tag`` if usable as a tag (not a version number or digest); raise otherwise."""
    if not isinstance(tag, str) or not _TAG_RE.fullmatch(tag) or ".." in tag:
        raise InvalidNameError(
            f"invalid tag {_shown(tag)}: use lowercase letters, digits, '.', '_' or '-' "
            "(at most 64, no control characters)"
        )
    if _VERSION_RE.fullmatch(tag) or tag.startswith("sha256"):
        raise InvalidNameError(f"invalid tag {tag!r}: it would read as a version or a digest")
    return tag


def is_commit_id(text: object) -> TypeGuard[str]:
    """Whether ``text`` is a 40-hex git commit id (what a Hub server may name as a revision)."""
    return isinstance(text, str) and _COMMIT_RE.fullmatch(text) is not None


def is_sha256_hex(text: object) -> TypeGuard[str]:
    """Whether ``text`` is 64 lowercase hex digits (a sha256 as the manifest records it)."""
    return isinstance(text, str) and _HEX64_RE.fullmatch(text) is not None


def is_artifact_file_name(text: object) -> bool:
    """Whether ``text`` may name a file of an artifact: one component of at most 128 letters,
    digits, '.', '_' or '-', not starting with '.' or '-'."""
    return isinstance(text, str) and _FILE_NAME_RE.fullmatch(text) is not None and text not in (".", "..")


def is_hub_repo(text: object) -> TypeGuard[str]:
    """Whether ``text`` is a Hub repository id ``ORG/NAME`` (letters, digits, '.', '_', '-')."""
    return isinstance(text, str) and _HUB_REPO_RE.fullmatch(text) is not None and ".." not in text


def version_number(text: str) -> int | None:
    """``N`` for a version label ``vN`` (full match), else None."""
    m = _VERSION_RE.fullmatch(text) if isinstance(text, str) else None
    return int(m.group(1)) if m else None


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
        suffix = {
            "latest": "",
            "version": f"@v{self.value}",
            "tag": f"@{self.value}",
            "digest": f"@sha256:{self.value}",
        }[self.selector]
        return f"{self.name}{suffix}"


def _check_text(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidReferenceError("empty reference: give ns/name[@v3|@tag|@sha256:..] or a path")
    if len(text) > MAX_REF_LEN:
        raise InvalidReferenceError(f"reference of {len(text)} characters is too long")
    problem = text_problem(text)
    if problem:
        raise InvalidReferenceError(
            f"reference {_shown(text)} {problem} (rename the directory, "
            "or give a path without such characters)"
        )
    return text


def _looks_like_name(text: str) -> bool:
    """Whether ``text`` has the shape of a store reference (``x/y`` or ``x/y@sel``).

    Shape, not validity: ``Me/D@x`` looks like a name (and is then refused as an invalid one),
    while paths are recognisable by a leading ``/ . ~``, a trailing ``/``, no ``/`` at all, or
    more than one ``/`` before any ``@``."""
    if text.startswith(("/", ".", "~")) or text.endswith("/") or "\\" in text:
        return False
    head = text.split("@", 1)[0]
    return head.count("/") == 1 and all(head.split("/"))


def is_name_ref(text: str) -> bool:
    """Whether ``text`` means a store version under the reference rule (see the module doc)."""
    return isinstance(text, str) and not text.startswith("hf://") and _looks_like_name(text)


def parse_name_ref(text: str) -> Ref:
    """Parse ``ns/name[@v3|@tag|@latest|@sha256:<prefix>]``; raise a UserError otherwise."""
    _check_text(text)
    name, at, sel = text.partition("@")
    validate_name(name)
    if not at or sel == LATEST:
        return Ref("name", name)
    if (v := version_number(sel)) is not None:
        return Ref("name", name, "version", v)
    if m := _DIGEST_RE.fullmatch(sel):
        return Ref("name", name, "digest", m.group(1))
    try:
        validate_tag(sel)
    except InvalidNameError:
        raise InvalidReferenceError(
            f"bad selector {_shown(sel)} in {_shown(text)}: use @v<N>, @<tag> or @sha256:<hex prefix>"
        ) from None
    return Ref("name", name, "tag", sel)


def parse_ref(text: str) -> Ref:
    """Parse a reference under the one rule: a store-reference shape means the store, anything
    else is a directory path (which must exist)."""
    _check_text(text)
    if text.startswith("hf://"):
        return _parse_hub(text)
    if _looks_like_name(text):
        return parse_name_ref(text)
    p = Path(text).expanduser()
    if p.is_dir():
        return Ref("path", path=p)
    if p.exists():
        raise InvalidReferenceError(
            f"invalid reference {text!r}: a file, not an artifact directory nor a name ns/name"
        )
    raise InvalidReferenceError(
        f"invalid reference {text!r}: neither a store reference (ns/name[@v3|@tag|@sha256:..]) "
        "nor an existing directory"
    )


def _parse_hub(text: str) -> Ref:
    body = text[len("hf://") :]
    if not body.startswith("datasets/"):
        raise InvalidReferenceError(f"{text!r}: hub references look like hf://datasets/ORG/NAME")
    repo, at, rev = body[len("datasets/") :].partition("@")
    if not is_hub_repo(repo):
        raise InvalidReferenceError(f"{text!r}: hub repo must be ORG/NAME")
    if at and (not _HUB_REV_RE.fullmatch(rev) or ".." in rev):
        raise InvalidReferenceError(f"{text!r}: bad hub revision {rev!r}")
    return Ref("hub", repo, "latest" if not rev else "tag", rev or None)
