"""What the Hub view of a store and its results repos share: the error type, file-path checks
and the empty commit's id (a module of its own so :mod:`.backend` and :mod:`.results_repo` do
not import each other)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

__all__ = ["HubError", "check_path", "empty_oid", "show"]

#: One part of a file path: what artifact files and the results layout use (protocol ids carry
#: ``+ , = @``, e.g. ``dc-noaug+epochs=20@fcbe67abf952``); never a leading '.', never '/'.
_PATH_PART = re.compile(r"[A-Za-z0-9_+,=@-][A-Za-z0-9._+,=@-]{0,199}")


class HubError(Exception):
    """An error answered with ``status`` and a Hub error code (``X-Error-Code``)."""

    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def show(text: str) -> str:
    """``text`` shortened and quoted for a message."""
    return repr(text[:80])


def empty_oid(name: str) -> str:
    """Commit id of a repo that exists but holds no version yet."""
    return hashlib.sha1(f"dcreg-empty\n{name}\n".encode()).hexdigest()


def check_path(path: Any) -> str:
    """``path`` if it is a safe relative file path in a repo; HubError 400 otherwise."""
    if not isinstance(path, str) or not path or len(path) > 512:
        raise HubError(400, "file path must be a non-empty string of at most 512 characters")
    parts = path.split("/")
    if len(parts) > 8 or any(not _PATH_PART.fullmatch(p) or p in (".", "..") for p in parts):
        raise HubError(
            400,
            f"refused file path {show(path)}: use '/'-separated parts of letters, "
            "digits, '.', '_', '-', '+', ',', '=' or '@' (no '..', no leading '/' or '.', "
            "at most 8 deep)",
        )
    return path
