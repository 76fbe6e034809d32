"""Path rules shared by import and export: text names, and what an overwrite may replace."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import OutputPathError, UserError
from ..manifest import ARTIFACT_FILES as ARTIFACT_FILES
from ..manifest import is_artifact_dir as is_artifact_dir


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
        raise cls(
            f"{what} path {shown!r} is not valid UTF-8; rename it (or use a link with a UTF-8 name)"
        ) from None
    return Path(text)
