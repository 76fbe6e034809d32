"""Canonical JSON and hashing: the bytes that digests are computed over."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, BinaryIO

_CHUNK = 1 << 20


def canonical_json(obj: Any) -> bytes:
    """Serialize ``obj`` deterministically: sorted keys, no whitespace, UTF-8, no NaN/Infinity."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    import hashlib  # imported on first use: commands that hash nothing (dcreg list) skip it

    return hashlib.sha256(data).hexdigest()


def sha256_stream(f: BinaryIO) -> tuple[str, int]:
    """Hex sha256 and byte count of everything left in ``f``."""
    import hashlib

    h = hashlib.sha256()
    size = 0
    while chunk := f.read(_CHUNK):
        h.update(chunk)
        size += len(chunk)
    return h.hexdigest(), size


def sha256_file(path: str | Path) -> tuple[str, int]:
    """Hex sha256 and size of the file at ``path``."""
    with open(path, "rb") as f:
        return sha256_stream(f)
