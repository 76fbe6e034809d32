"""Remembered strategy choices, so that ``--strategy auto`` gives the same numbers on a rerun.

Strategies agree per seed only up to float reassociation (a vmap ensemble sums in a different
order than one model at a time), which after many epochs moves accuracies by a few tenths of a
point. Picking by a fresh timing each time would make two identical commands disagree, so the
first measurement for a setup is stored here and reused, like an autotuner's cache.

File: ``$HARNESS_CACHE/strategies.json`` (default ``~/.cache/harness/strategies.json``).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

CACHE_ENV = "HARNESS_CACHE"
FILE_NAME = "strategies.json"


def cache_dir() -> Path:
    """``$HARNESS_CACHE`` if set, else ``~/.cache/harness``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path("~/.cache/harness").expanduser()


def setup_key(**fields: Any) -> str:
    """A stable key for everything the choice depends on (device, shapes, protocol id, runs)."""
    blob = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _load(path: Path) -> dict[str, Any]:
    from dcregistry.errors import JSONFormatError
    from dcregistry.jsonsafe import loads_bounded

    try:
        data = loads_bounded(path.read_bytes(), str(path))
    except (OSError, JSONFormatError):
        return {}  # missing or unreadable (hostile nesting included): measure again and rewrite it
    return data if isinstance(data, dict) else {}


def recall(key: str) -> dict[str, Any] | None:
    """The stored choice for ``key`` (``{"strategy", "measured"}``), or None."""
    entry = _load(cache_dir() / FILE_NAME).get(key)
    if isinstance(entry, dict) and isinstance(entry.get("strategy"), str):
        return entry
    return None


def remember(key: str, strategy: str, measured: dict[str, float]) -> None:
    """Store a choice; best effort (a read-only or full cache only costs a re-measurement)."""
    from dcregistry.errors import UserError
    from dcregistry.fsio import atomic_write_text, ensure_dir

    path = cache_dir() / FILE_NAME
    try:
        ensure_dir(path.parent)
        data = _load(path)
        data[key] = {"strategy": strategy, "measured": measured}
        # atomic (temp + fsync + rename): a concurrent reader sees the old or the new file, and
        # a failed write (disk full) leaves no temp file behind
        atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True))
    except (OSError, UserError):
        pass
