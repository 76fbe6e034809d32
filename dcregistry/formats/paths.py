"""Path rules shared by import and export: text names, and what an overwrite may replace."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import OutputPathError, UserError

#: The files of a dcreg/1 artifact directory (see :mod:`dcregistry.artifact`).
ARTIFACT_FILES = frozenset({"manifest.json", "data.safetensors", "README.md"})


def require_utf8(path: str | Path, what: str) -> Path:
    """Refuse a path that is not valid UTF-8 text: it would end up in metadata and messages.

    (Python keeps undecodable bytes of a file name as lone surrogates, which cannot be written
    as UTF-8 JSON or printed.)"""
    text = os.fspath(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(text).decode("utf-8", "backslashreplace")
        cls = OutputPathError if what == "output" else UserError
        raise cls(f"{what} path {shown!r} is not valid UTF-8; rename it (or use a link with a "
                  "UTF-8 name)") from None
    return Path(text)


def is_artifact_dir(path: Path) -> bool:
    """Whether ``path`` is a real directory holding only dcreg/1 artifact files (ours to replace).

    An absent path counts as replaceable; a symlink, device, other directory or file does not."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return True
    if not stat.S_ISDIR(st.st_mode):
        return False
    with os.scandir(path) as entries:
        names = {e.name for e in entries if e.is_file(follow_symlinks=False)}
    with os.scandir(path) as entries:
        count = sum(1 for _ in entries)
    return "manifest.json" in names and names <= ARTIFACT_FILES and count == len(names)
