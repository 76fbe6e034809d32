"""Crash-safe file helpers: every write goes temp file -> write -> fsync -> rename -> fsync dir.

A reader therefore sees either the old file or the complete new one, never a torn write, and
after the function returns the change survives a power cut (as far as the filesystem keeps its
promises). Temporary names start with the writer's pid so that garbage collection can tell a
temp file of a dead process from one still being written (see :func:`tmp_owner_alive`).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
from pathlib import Path
from typing import BinaryIO, Callable

CHUNK = 1 << 20


def fsync_dir(path: str | Path) -> None:
    """fsync a directory so that renames/creations inside it are durable (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def ensure_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if missing, fsyncing each parent that got a new entry."""
    if path.is_dir():
        return path
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            continue
        fsync_dir(d.parent)
    return path


def tmp_name(prefix: str = "", suffix: str = "") -> str:
    """A unique temp file name carrying this process's pid: ``<prefix><pid>-<random><suffix>``."""
    return f"{prefix}{os.getpid()}-{secrets.token_hex(6)}{suffix}"


def tmp_owner_alive(name: str) -> bool:
    """Whether the process whose pid starts temp name ``name`` (see :func:`tmp_name`) still runs."""
    head = name.lstrip(".").split("-", 1)[0]
    if not head.isdigit():
        return False
    pid = int(head)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def atomic_write_bytes(path: Path, data: bytes, *, tmp_dir: Path | None = None,
                       mode: int | None = None) -> None:
    """Write ``data`` to ``path`` atomically (temp in ``tmp_dir`` or next to ``path``)."""
    tmp_dir = tmp_dir or path.parent
    tmp = tmp_dir / tmp_name(".", ".part")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        _unlink_quiet(tmp)
        raise
    fsync_dir(path.parent)


def append_line(path: Path, line: str) -> None:
    """Append one line to ``path`` durably (repairing a torn last line left by a crash first)."""
    data = line.rstrip("\n").encode("utf-8") + b"\n"
    with open(path, "a+b") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                data = b"\n" + data
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    fsync_dir(path.parent)


def copy_hashing(src: BinaryIO, dst: BinaryIO, *, on_chunk: Callable[[int], None] | None = None,
                 after_first_chunk: Callable[[], None] | None = None) -> tuple[str, int]:
    """Copy ``src`` to ``dst`` in chunks; return the hex sha256 and size of what was copied."""
    h = hashlib.sha256()
    size = 0
    first = True
    while chunk := src.read(CHUNK):
        h.update(chunk)
        dst.write(chunk)
        size += len(chunk)
        if on_chunk is not None:
            on_chunk(len(chunk))
        if first and after_first_chunk is not None:
            dst.flush()
            after_first_chunk()
        first = False
    return h.hexdigest(), size


def remove_tree(path: Path) -> None:
    """Remove a file or directory tree if present (read-only files included)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        _unlink_quiet(path)


def _unlink_quiet(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
