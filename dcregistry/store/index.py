"""The SQLite index of a local store: one row per live version, for metadata queries.

The index is derived data: the version files under ``repos/`` are the truth. It is rebuilt
whenever it is missing, corrupt, of another schema version or out of step with the version
files (for example after a push killed between writing its version file and updating the index);
:meth:`LocalStore._index` does that check (a directory scan) before every query. A store on a
read-only filesystem gets an in-memory index built from the files.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .query import QUERY_FIELDS, Term

SCHEMA_VERSION = 2
#: The columns of the versions table, in their order: a column per query field
#: (:data:`~.query.QUERY_FIELDS`, which says its type and value) and the metadata as JSON.
_COLUMNS = (
    "name",
    "version",
    "digest",
    "created_at",
    "dataset",
    "method",
    "ipc",
    "num_classes",
    "label_kind",
    "pixel",
    "seed",
    "license",
    "made_at",
    "metadata",
)
_FIELD_COLUMNS = _COLUMNS[:-1]  # (a test checks that these are exactly the query fields)


def _column(name: str) -> str:
    field = QUERY_FIELDS[name]
    return f"{name} {'INTEGER' if field.kind == 'int' else 'TEXT'}{' NOT NULL' if field.required else ''}"


_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS versions (
    {", ".join(_column(c) for c in _FIELD_COLUMNS)},
    metadata TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE INDEX IF NOT EXISTS versions_dataset ON versions (dataset, method, ipc, name, version);
CREATE INDEX IF NOT EXISTS versions_digest ON versions (digest);
CREATE TABLE IF NOT EXISTS scans (
    name TEXT PRIMARY KEY,
    sig TEXT NOT NULL,
    versions TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class IndexRow:
    """What the index knows about one version."""

    name: str
    version: int
    digest: str
    created_at: str | None
    metadata: dict[str, Any]  # {} when the version's manifest could not be read (a damaged version)

    def values(self) -> tuple[Any, ...]:
        """The row's column values, in :data:`_COLUMNS` order."""
        return (
            *(QUERY_FIELDS[c].value(self) for c in _FIELD_COLUMNS),
            json.dumps(self.metadata or {}, sort_keys=True),
        )


class Index:
    """An open index connection (use as a context manager)."""

    def __init__(self, path: Path | None, *, read_only: bool = False):
        self.path = path
        self.in_memory = path is None
        self.read_only = read_only
        self.conn = self._connect()

    # -- opening ------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self.path is None:
            return self._init(sqlite3.connect(":memory:"))
        if self.read_only:
            # A read-only store: read the file as it is (immutable: no locks, no journal);
            # the caller checks it against the version files before trusting it.
            uri = f"file:{quote(str(self.path.absolute()))}?mode=ro&immutable=1"
            conn = sqlite3.connect(uri, uri=True)
            try:
                (ver,) = conn.execute("PRAGMA user_version").fetchone()
                if ver != SCHEMA_VERSION:
                    raise sqlite3.DatabaseError("index of another schema version")
                conn.execute("SELECT 1 FROM versions LIMIT 1").fetchone()
            except BaseException:
                conn.close()
                raise
            return conn
        try:
            return self._init(sqlite3.connect(str(self.path), timeout=60))
        except sqlite3.DatabaseError as exc:
            if _readonly(exc):
                self.in_memory = True
                return self._init(sqlite3.connect(":memory:"))
            # Corrupt file or foreign content: it is derived data, so start over.
            for suffix in ("", "-journal", "-wal", "-shm"):
                try:
                    os.unlink(str(self.path) + suffix)
                except FileNotFoundError:
                    pass
            try:
                return self._init(sqlite3.connect(str(self.path), timeout=60))
            except sqlite3.DatabaseError:
                self.in_memory = True
                return self._init(sqlite3.connect(":memory:"))

    @staticmethod
    def _init(conn: sqlite3.Connection) -> sqlite3.Connection:
        try:
            conn.execute("PRAGMA busy_timeout = 60000")
            (ver,) = conn.execute("PRAGMA user_version").fetchone()
            if ver != SCHEMA_VERSION:
                # Create (or replace an old schema) in one write transaction, re-checking inside
                # it, so two processes creating a fresh index do not undo each other's rows.
                level = conn.isolation_level
                conn.isolation_level = None
                conn.execute("BEGIN IMMEDIATE")
                try:
                    (ver,) = conn.execute("PRAGMA user_version").fetchone()
                    if ver != SCHEMA_VERSION:
                        conn.execute("DROP TABLE IF EXISTS versions")
                        conn.execute("DROP TABLE IF EXISTS scans")
                        for stmt in _SCHEMA.split(";"):
                            if stmt.strip():
                                conn.execute(stmt)
                        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                finally:
                    conn.isolation_level = level
            # Touch the table so that a damaged file fails here, not in the middle of a query.
            conn.execute("SELECT 1 FROM versions LIMIT 1").fetchone()
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ------------------------------------------------------------------------------
    def keys(self) -> set[tuple[str, int]]:
        """Every (name, version) the index holds."""
        return {(n, v) for n, v in self.conn.execute("SELECT name, version FROM versions")}

    def scans(self) -> dict[str, tuple[str, list[int]]]:
        """Recorded directory signatures: name -> (signature, live version numbers)."""
        out = {}
        for n, sig, vs in self.conn.execute("SELECT name, sig, versions FROM scans"):
            try:
                out[n] = (sig, [int(v) for v in json.loads(vs)])
            except (ValueError, TypeError):
                return {}  # damaged: the caller scans the directories
        return out

    def set_scans(self, scans: Mapping[str, tuple[str, list[int]]]) -> None:
        """Replace the recorded directory signatures."""
        with self.conn:
            self.conn.execute("DELETE FROM scans")
            self.conn.executemany(
                "INSERT INTO scans (name, sig, versions) VALUES (?, ?, ?)",
                [(n, s, json.dumps(vs)) for n, (s, vs) in scans.items()],
            )

    def query(
        self, terms: Iterable[Term] = (), name: str | None = None, *, highest_only: bool = False
    ) -> list[IndexRow]:
        """Rows matching every term (and ``name`` if given), ordered by name then version;
        ``highest_only``: only the highest matching version of each name."""
        where: list[str] = []
        params: list[str | int] = []
        if name is not None:
            where.append("name = ?")
            params.append(name)
        for t in terms:
            cond, p = t.sql()
            where.append(cond)
            params.extend(p)
        cond = (" WHERE " + " AND ".join(where)) if where else ""
        if highest_only:
            # the highest matching version per name, found in SQL so that only those rows'
            # metadata is decoded
            sql = (
                "SELECT v.name, v.version, v.digest, v.created_at, v.metadata FROM versions v "
                f"JOIN (SELECT name AS n, max(version) AS mv FROM versions{cond} GROUP BY name)"
                " ON v.name = n AND v.version = mv ORDER BY v.name"
            )
        else:
            sql = (
                "SELECT name, version, digest, created_at, metadata FROM versions"
                f"{cond} ORDER BY name, version"
            )
        with closing(self.conn.execute(sql, params)) as cur:
            return [IndexRow(n, v, d, c, json.loads(m)) for n, v, d, c, m in cur]

    # -- writing ------------------------------------------------------------------------------
    def upsert(self, rows: Iterable[IndexRow]) -> None:
        """Insert or replace rows (idempotent)."""
        marks = ",".join("?" * len(_COLUMNS))
        with self.conn:
            self.conn.executemany(
                f"INSERT OR REPLACE INTO versions ({','.join(_COLUMNS)}) VALUES ({marks})",
                [r.values() for r in rows],
            )

    def delete(self, keys: Iterable[tuple[str, int]]) -> None:
        """Delete rows by (name, version) (missing ones are ignored)."""
        with self.conn:
            self.conn.executemany("DELETE FROM versions WHERE name = ? AND version = ?", list(keys))


def _readonly(exc: sqlite3.DatabaseError) -> bool:
    msg = str(exc).lower()
    return "readonly" in msg or "read-only" in msg or "unable to open" in msg
