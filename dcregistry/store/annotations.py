"""Annotations of the local store: JSON records attached to a version (e.g. evaluation results,
kind ``eval``) under ``repos/<ns>/<name>/annotations/v<N>/<id>.json``. They never change a
version's digest. Ids start with a UTC timestamp, so name order is time order."""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import InvalidAnnotationError
from ..fsio import atomic_write_bytes, ensure_dir
from .base import VersionInfo
from .layout import Layout, is_file_entry, list_dir, read_small_json

_KIND = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
#: One annotation file is at most this large (an evaluation record is a few KiB).
MAX_ANNOTATION_BYTES = 4 << 20


class Annotations:
    """The annotation area of a :class:`~.layout.Layout`."""

    def __init__(self, layout: Layout):
        self.layout = layout

    def _dir(self, info: VersionInfo) -> Path:
        return self.layout.repo(info.name) / "annotations" / f"v{info.version}"

    def add(self, info: VersionInfo, kind: str, record: Mapping[str, Any]) -> str:
        """Store ``record`` of ``kind`` on version ``info`` (under the lock); return its id."""
        if not isinstance(kind, str) or not _KIND.fullmatch(kind):
            raise InvalidAnnotationError(
                f"invalid annotation kind {str(kind)[:80]!r}: use lowercase [a-z0-9._-]"
            )
        now = _dt.datetime.now(_dt.timezone.utc)
        ann_id = f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{kind}-{os.urandom(4).hex()}"
        envelope = {
            "id": ann_id,
            "kind": kind,
            "created_at": now.isoformat().replace("+00:00", "Z"),
            "name": info.name,
            "version": info.version,
            "digest": info.digest,
            "record": dict(record),
        }
        try:
            data = json.dumps(envelope, indent=2, sort_keys=True, allow_nan=False) + "\n"
        except (TypeError, ValueError, RecursionError) as exc:
            raise InvalidAnnotationError(f"annotation record is not plain JSON: {exc}") from None
        if len(data) > MAX_ANNOTATION_BYTES:
            raise InvalidAnnotationError(f"annotation record is larger than {MAX_ANNOTATION_BYTES} bytes")
        with self.layout.guard():
            adir = ensure_dir(self._dir(info))
            atomic_write_bytes(
                adir / f"{ann_id}.json", data.encode("utf-8"), tmp_dir=self.layout.tmp, mode=0o444
            )
        return ann_id

    def read(
        self, info: VersionInfo, kind: str | None = None, problems: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Annotations of ``info``, oldest first (damaged files skipped, noted in ``problems``)."""
        out: list[dict[str, Any]] = []
        for e in list_dir(self._dir(info)):
            if not e.name.endswith(".json") or e.name.startswith("."):
                continue
            if not is_file_entry(e):
                if problems is not None:
                    problems.append(f"{info.ref}: annotation {e.name} is not a regular file; skipped")
                continue
            try:
                ann = read_small_json(e.path, MAX_ANNOTATION_BYTES)
            except (OSError, ValueError):
                ann = None
            if not (
                isinstance(ann, dict)
                and isinstance(ann.get("kind"), str)
                and isinstance(ann.get("record"), dict)
            ):
                if problems is not None:
                    problems.append(f"{info.ref}: annotation {e.name} is damaged; skipped")
                continue
            if kind is None or ann.get("kind") == kind:
                out.append(ann)
        return out


__all__ = ["Annotations", "InvalidAnnotationError", "MAX_ANNOTATION_BYTES"]
