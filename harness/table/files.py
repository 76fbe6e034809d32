"""The table directory's files: atomic JSON writes and reads, cell paths, opening a stored set."""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dcregistry.errors import UserError

if TYPE_CHECKING:
    pass


_FILE_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def _write_json(path: Path, doc: Any) -> None:
    from dcregistry.fsio import atomic_write_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n").encode())


def _read_json(path: Path) -> Any | None:
    """A stored document, or None when it is missing or damaged (hostile nesting and sizes included)."""
    from dcregistry.errors import JSONFormatError
    from dcregistry.jsonsafe import MAX_BYTES, loads_bounded

    try:
        if path.stat().st_size > MAX_BYTES:
            return None
        return loads_bounded(path.read_bytes(), str(path))
    except (OSError, JSONFormatError):
        return None


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def cell_path(out: Path, set_name: str, protocol_id: str, run: int) -> Path:
    return out / "cells" / f"{set_name}__{_FILE_SAFE.sub('_', protocol_id)}__r{run}.json"


def _open_set(path: Path):
    """The finished artifact in ``path`` (None when absent or unfinished)."""
    from dcregistry.artifact import open_artifact

    if not (path / "manifest.json").is_file() and not (path / "metadata.json").is_file():
        return None
    try:
        return open_artifact(path)
    except (UserError, OSError, ValueError):
        return None
