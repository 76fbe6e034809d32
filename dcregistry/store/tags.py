"""Tags of the local store: an append-only log per name, replayed into the current tags.

An entry is ``{"ts", "action": "set"|"unset", "tag", "version", "digest"}``. A push with tags
logs its ``set`` entries BEFORE it renames the version file into place, with the push's ``txn``
id, which the version file also records. A ``txn`` entry counts only if the version file with
that number carries the same ``txn``: so the version and its tags appear together (one rename
commits both), and a push killed in between leaves entries that never count (they cannot attach
to a later version that reuses the number, which has another txn).

Lines that are not valid entries are skipped: a line torn by a crash (not JSON) silently; a JSON
line missing fields with a :class:`~dcregistry.errors.StoreWarning`. ``verify --all`` reports
both (:func:`log_problems`).
"""

from __future__ import annotations

import datetime as _dt
import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import InvalidNameError, StoreWarning, UserError
from ..fsio import append_line, ensure_dir
from ..refs import LATEST, validate_tag
from .layout import Layout, VersionRecord

#: The tag log is read whole; beyond this it is refused as damaged rather than loaded.
MAX_LOG_BYTES = 64 << 20


def now_precise() -> str:
    """UTC now, ISO 8601 with microseconds."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def user_tag(tag: str) -> str:
    """``tag`` if a user may set or remove it (``latest`` is automatic)."""
    validate_tag(tag)
    if tag == LATEST:
        raise InvalidNameError(
            "'latest' is automatic (the highest version); it cannot be set or removed by hand"
        )
    return tag


def _entry_problem(entry: object) -> str | None:
    """Why a parsed log line is not a valid entry (None when it is)."""
    if not isinstance(entry, dict):
        return "not a JSON object"
    if entry.get("action") not in ("set", "unset"):
        return "no action set/unset"
    tag = entry.get("tag")
    try:
        validate_tag(tag)  # type: ignore[arg-type]
    except UserError:
        return "no valid tag"
    v = entry.get("version")
    if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v < 10**9:
        return "no valid version"
    txn = entry.get("txn")
    if txn is not None and not isinstance(txn, str):
        return "bad txn"
    return None


class TagLog:
    """Reads and appends the tag logs of a :class:`~.layout.Layout`."""

    def __init__(self, layout: Layout):
        self.layout = layout

    def path(self, name: str) -> Path:
        return self.layout.repo(name) / "tags.log"

    def _lines(self, name: str) -> list[str]:
        path = self.path(name)
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_LOG_BYTES + 1)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError):
            return []  # no log yet, or something else in its place (verify --all says so)
        if len(data) > MAX_LOG_BYTES:
            warnings.warn(
                StoreWarning(f"{name}: tags.log is larger than {MAX_LOG_BYTES} bytes; its tags are ignored"),
                stacklevel=3,
            )
            return []
        return data.decode("utf-8", errors="replace").splitlines()

    def read(self, name: str, *, warn: bool = True) -> tuple[list[dict[str, Any]], list[str]]:
        """(valid entries oldest first, problems found). Problems about lines that are valid JSON
        but not entries are also warned about when ``warn``."""
        entries: list[dict[str, Any]] = []
        problems: list[str] = []
        for no, line in enumerate(self._lines(name), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except (ValueError, RecursionError):
                problems.append(f"{name}: tags.log line {no} is not JSON (torn by a crash?); skipped")
                continue
            why = _entry_problem(entry)
            if why is not None:
                msg = f"{name}: tags.log line {no} is not a tag entry ({why}); skipped"
                problems.append(msg)
                if warn:
                    warnings.warn(StoreWarning(msg), stacklevel=2)
                continue
            entries.append(entry)
        return entries, problems

    def entries(self, name: str) -> list[dict[str, Any]]:
        """Every valid entry of ``name``'s log, oldest first."""
        return self.read(name)[0]

    def current(self, name: str, live: Mapping[int, VersionRecord] | list[int]) -> dict[str, int]:
        """Replay the log: tag -> version, restricted to live versions, ``latest`` added.

        ``live`` maps live version numbers to their records (a list of numbers is enough when
        the caller has not read them; txn entries then read the version files they need)."""
        live_nums = set(live)
        records: dict[int, VersionRecord | None] = dict(live) if isinstance(live, Mapping) else {}
        tags: dict[str, int] = {}
        for e in self.entries(name):
            v = e["version"]
            if e.get("txn") is not None:
                if v not in live_nums:
                    continue  # the push that logged it never committed (or was removed)
                if v not in records:
                    try:
                        records[v] = self.layout.read_version(name, v)
                    except UserError:
                        records[v] = None
                rec = records[v]
                if rec is None or rec.txn != e["txn"]:
                    continue
            if e["action"] == "set":
                tags[e["tag"]] = v
            else:
                tags.pop(e["tag"], None)
        tags = {t: v for t, v in tags.items() if v in live_nums}
        if live_nums:
            tags[LATEST] = max(live_nums)
        return dict(sorted(tags.items()))

    def append(
        self, name: str, action: str, tag: str, version: int, digest: str, txn: str | None = None
    ) -> None:
        """Append one entry (under the store lock)."""
        entry = {"ts": now_precise(), "action": action, "tag": tag, "version": version, "digest": digest}
        if txn is not None:
            entry["txn"] = txn
        with self.layout.guard():
            ensure_dir(self.layout.repo(name))
            append_line(self.path(name), json.dumps(entry, sort_keys=True))


__all__ = ["TagLog", "user_tag", "now_precise", "MAX_LOG_BYTES"]
