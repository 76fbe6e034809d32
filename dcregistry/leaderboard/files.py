"""Reading a results directory's files as untrusted input: regular files only (no link
followed), size-capped, images only when they are PNGs."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import UserError

__all__ = ["MAX_PNG_BYTES", "read_png", "read_regular_file"]

MAX_PNG_BYTES = 16 << 20
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def read_regular_file(path: Path, rel: str, max_bytes: int) -> bytes:
    """At most ``max_bytes + 1`` bytes of ``path`` (the caller tells a file too large), never
    through a link or from a special file; :class:`UserError` naming ``rel`` (no absolute path:
    a served page shows the message)."""
    try:
        st = path.lstat()
        if not stat.S_ISREG(st.st_mode):  # a link or special file is no record
            raise UserError(f"{rel}: is not a regular file")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as f:
            return f.read(max_bytes + 1)
    except OSError as exc:
        raise UserError(f"{rel}: cannot be read ({exc.strerror or type(exc).__name__})") from None


def read_png(path: Path) -> bytes | None:
    """The PNG at ``path`` (a regular file of at most :data:`MAX_PNG_BYTES` that starts as a PNG
    does), else None: a missing, linked, huge or other file is no image of the site."""
    try:
        data = read_regular_file(path, path.name, MAX_PNG_BYTES)
    except UserError:
        return None
    return data if len(data) <= MAX_PNG_BYTES and data.startswith(PNG_MAGIC) else None
