"""The one staged-write helper: every file and directory dcregistry writes goes through here.

Pattern: write into a temporary name on the same filesystem -> fsync -> rename into place ->
fsync the parent directory. A reader sees the old content or the complete new one, never a torn
write, and a failure (including a full disk) leaves nothing behind but the old state.

This is also the one place where the operating system's refusals become one-line user errors
(:func:`translate_os_errors`): a full disk or quota (ENOSPC/EDQUOT) is a
:class:`~dcregistry.errors.DiskFullError` naming the path that ran out of space, a read-only or
permission-denied target (EROFS/EACCES/EPERM) a :class:`~dcregistry.errors.ReadOnlyError`, and
an unusable path (too long, under a regular file, a dangling symlink) an
:class:`~dcregistry.errors.OutputPathError`.

Temporary names carry the writer's pid and the incarnation of that process (its start time on
this boot) so that garbage collection can tell a temp file of a dead process from one still being
written (:func:`tmp_owner_alive`), and find them wherever they are (:func:`is_tmp_name`).
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from .errors import DiskFullError, OutputExistsError, OutputPathError, ReadOnlyError, StorageError, UserError
from .refs import has_control_chars, text_problem

__all__ = [
    "CHUNK",
    "translate_os_errors",
    "os_error_to_user",
    "fsync_dir",
    "ensure_dir",
    "tmp_name",
    "is_tmp_name",
    "tmp_owner_alive",
    "atomic_write_bytes",
    "atomic_write_text",
    "staged_file",
    "staged_dir",
    "append_line",
    "copy_hashing",
    "remove_tree",
    "check_output_path",
    "refuse_inside",
    "store_root_above",
    "is_writable_dir",
    "has_control_chars",
]

CHUNK = 1 << 20
_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}
#: Longest single path component most filesystems accept (NAME_MAX).
NAME_MAX = 255


def os_error_to_user(
    exc: OSError,
    path: str | Path | None = None,
    *,
    read_only_cls: type[ReadOnlyError] = ReadOnlyError,
    subject: str | None = None,
) -> UserError | None:
    """The user error an OSError stands for (None for errors that are not the user's).

    ``subject`` names what was being written (e.g. "the store at /x"); ``read_only_cls`` lets
    the store raise its own read-only class."""
    where = str(path if path is not None else (exc.filename or "?"))
    what = subject or where
    code = exc.errno
    if code in _FULL:
        kind = "quota exceeded" if code == getattr(errno, "EDQUOT", None) else "no space left"
        return DiskFullError(
            f"{what}: {kind} on the device while writing {where}; free some space "
            "(or write elsewhere) and retry; nothing partial was left"
        )
    if code == errno.EROFS:
        return read_only_cls(
            f"{what} is on a read-only filesystem (writing {where} failed); "
            "reading works, writing needs a writable location"
        )
    if code in (errno.EACCES, errno.EPERM):
        return read_only_cls(
            f"{what} is read-only for this user (permission denied on {where}); "
            "reading works, writing needs write permission"
        )
    if code == errno.ENAMETOOLONG:
        return OutputPathError(
            f"{where}: the path or one of its names is too long for the filesystem; choose a shorter path"
        )
    if code == errno.ENOTDIR:
        return OutputPathError(
            f"{where}: a component of the path is a regular file, not a directory; choose another path"
        )
    if code == errno.ELOOP:
        return OutputPathError(f"{where}: too many levels of symbolic links")
    if code == errno.EISDIR:
        return OutputPathError(f"{where} is a directory where a file was expected")
    if code in (errno.EIO, getattr(errno, "EUCLEAN", -1)):
        return StorageError(f"{where}: input/output error from the device; check the disk")
    return None


@contextmanager
def translate_os_errors(
    path: str | Path | None = None,
    *,
    read_only_cls: type[ReadOnlyError] = ReadOnlyError,
    subject: str | None = None,
) -> Iterator[None]:
    """Turn the OSErrors that are the user's or the machine's into named user errors."""
    try:
        yield
    except OSError as exc:
        err = os_error_to_user(exc, exc.filename or path, read_only_cls=read_only_cls, subject=subject)
        if err is None:
            raise
        raise err from None


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
    path = Path(path)
    if path.is_dir():
        return path
    missing = []
    p = path
    while not (p.exists() or p.is_symlink()):
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    with translate_os_errors(path):
        for d in reversed(missing):
            try:
                d.mkdir()
            except FileExistsError:
                if not d.is_dir():
                    raise OutputPathError(f"{d} exists and is not a directory") from None
                continue
            fsync_dir(d.parent)
        if not path.is_dir():
            raise OutputPathError(f"{path} is not a directory (a file or a dangling symlink is in the way)")
    return path


_TMP_RE = re.compile(r"~tmp\.([0-9]{1,10})\.([0-9a-f]{8})\.[0-9a-f]{12}")
_OLD_TMP_RE = re.compile(r"\.?([0-9]{1,10})-")  # pid-first names of earlier versions (temp dirs only)


def _incarnation(pid: int) -> str | None:
    """8 hex digits naming one run of process ``pid``: its start time and this boot, so a later
    process that reuses the pid (a restarted container's pid 1) has another; None off Linux."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat_line = f.read()
        # field 22 (starttime) counted after the parenthesised command name, which may hold spaces
        start = stat_line[stat_line.rindex(b")") + 2 :].split()[19]
        with open("/proc/sys/kernel/random/boot_id", "rb") as f:
            boot = f.read().strip()
    except (OSError, ValueError, IndexError):
        return None
    import hashlib  # only when a temp name is made or checked, not at start-up

    return hashlib.sha256(boot + b"/" + start).hexdigest()[:8]


_SELF: tuple[int, str] | None = None


def _self_incarnation() -> str:
    global _SELF
    if _SELF is None or _SELF[0] != os.getpid():  # recomputed in a forked child
        _SELF = (os.getpid(), _incarnation(os.getpid()) or os.urandom(4).hex())
    return _SELF[1]


def tmp_name(prefix: str = "", suffix: str = "") -> str:
    """A unique temp name naming its writer: ``<prefix>~tmp.<pid>.<incarnation>.<random><suffix>``.

    Every temporary file or directory dcregistry creates, anywhere, has such a name, so
    :func:`is_tmp_name` finds them and :func:`tmp_owner_alive` tells whether the writer still runs
    (the pid alone repeats across container restarts)."""
    return f"{prefix}~tmp.{os.getpid()}.{_self_incarnation()}.{os.urandom(6).hex()}{suffix}"


def is_tmp_name(name: str) -> bool:
    """Whether ``name`` was made by :func:`tmp_name` (its ``~tmp.`` marker cannot occur in a
    store name, tag or digest, so this holds anywhere in a store)."""
    return _TMP_RE.search(name) is not None


def tmp_owner_alive(name: str) -> bool:
    """Whether the process run that made temp name ``name`` (see :func:`tmp_name`) still runs.

    Names that are not temp names count as dead (callers only pass entries of temp areas)."""
    m = _TMP_RE.search(name)
    if m is None:
        old = _OLD_TMP_RE.match(name)
        return old is not None and _pid_alive(int(old.group(1)))
    pid, inc = int(m.group(1)), m.group(2)
    if pid == os.getpid():
        return inc == _self_incarnation()
    if not _pid_alive(pid):
        return False
    now = _incarnation(pid)
    return now is None or now == inc  # unknown (not Linux, hidden /proc): assume alive


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def process_umask() -> int:
    """The process's umask (read from /proc where possible: setting it to read it races threads)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def default_file_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file (0o666 less the umask)."""
    return 0o666 & ~process_umask()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(
    path: str | Path,
    data: bytes,
    *,
    tmp_dir: Path | None = None,
    mode: int | None = None,
    read_only_cls: type[ReadOnlyError] = ReadOnlyError,
    subject: str | None = None,
) -> None:
    """Write ``data`` to ``path`` atomically (temp in ``tmp_dir`` or next to ``path``)."""
    path = Path(path)
    tmp = Path(tmp_dir or path.parent) / tmp_name(".", ".part")
    with translate_os_errors(path, read_only_cls=read_only_cls, subject=subject):
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


def atomic_write_text(path: str | Path, text: str, **kwargs: Any) -> None:
    """:func:`atomic_write_bytes` of UTF-8 ``text`` (newlines written as ``\\n``)."""
    atomic_write_bytes(path, text.encode("utf-8"), **kwargs)


def _replace_ok_default(target: Path) -> bool:
    return False


def _is_empty_dir(path: Path) -> bool:
    with os.scandir(path) as it:
        return next(it, None) is None


def _place(
    tmp: Path, target: Path, *, is_dir: bool, overwrite: bool, replace_ok: Callable[[Path], bool]
) -> None:
    """Rename the finished ``tmp`` onto ``target`` following the overwrite policy."""
    try:
        st = target.lstat()
    except FileNotFoundError:
        os.rename(tmp, target)
        return
    if stat.S_ISLNK(st.st_mode):
        raise OutputPathError(f"{target} is a symbolic link; give the real path")
    if is_dir and stat.S_ISDIR(st.st_mode) and _is_empty_dir(target):
        os.rmdir(target)  # an empty directory is free to take
        os.rename(tmp, target)
        return
    kind = (
        "regular file"
        if stat.S_ISREG(st.st_mode)
        else "directory"
        if stat.S_ISDIR(st.st_mode)
        else "special file"
    )
    if not overwrite:
        raise OutputExistsError(
            f"{target} already exists ({kind}); choose another output or allow overwriting"
        )
    if not replace_ok(target):
        raise OutputExistsError(f"{target} exists and is a {kind} that is not ours to replace")
    if not is_dir and stat.S_ISREG(st.st_mode):
        os.replace(tmp, target)  # atomic file replacement
        return
    old = target.with_name(tmp_name(f".{target.name[:100]}.old-"))
    os.rename(target, old)
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(old, target)
        raise
    remove_tree(old)


def replace_regular_file(target: Path) -> bool:
    """Overwrite policy: only a regular file (never a directory, device, socket or link)."""
    try:
        return stat.S_ISREG(target.lstat().st_mode)
    except FileNotFoundError:
        return True


@contextmanager
def staged_file(
    target: str | Path,
    *,
    overwrite: bool = False,
    replace_ok: Callable[[Path], bool] = replace_regular_file,
    mode: int | None = None,
) -> Iterator[Path]:
    """Yield a temp path next to ``target``; on success fsync it and rename it onto ``target``.

    ``overwrite`` allows replacing an existing ``target`` when ``replace_ok(target)`` (default:
    only a regular file). On any error the temp file is removed and ``target`` is untouched."""
    target = Path(target)
    check_output_path(target)
    ensure_dir(target.parent)
    tmp = target.parent / tmp_name(f".{target.name[:100]}.", ".part")
    with translate_os_errors(target, subject=str(target)):
        try:
            yield tmp
            if not tmp.is_file():
                raise RuntimeError(f"staged_file: the writer did not create {tmp}")
            _fsync_file(tmp)
            if mode is not None:
                os.chmod(tmp, mode)
            _place(tmp, target, is_dir=False, overwrite=overwrite, replace_ok=replace_ok)
        except BaseException:
            remove_tree(tmp)
            raise
    fsync_dir(target.parent)


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            if not p.is_symlink():
                _fsync_file(p)
        fsync_dir(dirpath)


@contextmanager
def staged_dir(
    target: str | Path,
    *,
    overwrite: bool = False,
    replace_ok: Callable[[Path], bool] = _replace_ok_default,
    mode: int | None = None,
) -> Iterator[Path]:
    """Yield an empty temp directory next to ``target``; on success fsync every file in it and
    rename it onto ``target`` (an absent or empty directory; an existing one only with
    ``overwrite`` and ``replace_ok(target)``). On any error nothing is left behind."""
    target = Path(target)
    check_output_path(target)
    ensure_dir(target.parent)
    tmp = target.parent / tmp_name(f".{target.name[:100]}.", ".staging")
    with translate_os_errors(target, subject=str(target)):
        tmp.mkdir()
        try:
            if mode is not None:
                os.chmod(tmp, mode)
            yield tmp
            _fsync_tree(tmp)
            _place(tmp, target, is_dir=True, overwrite=overwrite, replace_ok=replace_ok)
        except BaseException:
            remove_tree(tmp)
            raise
    fsync_dir(target.parent)


def append_line(path: Path, line: str) -> None:
    """Append one line to ``path`` durably (repairing a torn last line left by a crash first)."""
    data = line.rstrip("\n").encode("utf-8") + b"\n"
    with translate_os_errors(path):
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


def copy_hashing(
    src: BinaryIO,
    dst: BinaryIO,
    *,
    on_chunk: Callable[[int], None] | None = None,
    after_first_chunk: Callable[[], None] | None = None,
) -> tuple[str, int]:
    """Copy ``src`` to ``dst`` in chunks; return the hex sha256 and size of what was copied."""
    import hashlib

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
    """Remove a file, link or directory tree if present (read-only files included)."""
    import shutil  # (imported here: read-only commands never remove anything)

    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        _unlink_quiet(path)


def _unlink_quiet(path: Path) -> None:
    try:
        os.unlink(path)
    except (FileNotFoundError, NotADirectoryError):
        pass
    except IsADirectoryError:
        import shutil

        shutil.rmtree(path, ignore_errors=True)


def check_output_path(path: str | Path) -> Path:
    """Refuse an output path that cannot be written: control characters, a name longer than the
    filesystem allows, a dangling symlink, or a regular file among its parents."""
    text = os.fspath(path)
    if not text:
        raise OutputPathError("empty output path")
    problem = text_problem(text)
    if problem:
        raise OutputPathError(f"output path {text!r} {problem}; choose another name")
    p = Path(text)
    for part in p.parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise OutputPathError(
                f"output path {text[:80]!r}...: the name {part[:40]!r}... is "
                f"longer than {NAME_MAX} bytes; choose a shorter path"
            )
    if len(os.fsencode(text)) >= 4096:
        raise OutputPathError(f"output path {text[:80]!r}... is too long (PATH_MAX 4096 bytes)")
    if p.is_symlink() and not p.exists():
        raise OutputPathError(f"{text} is a dangling symbolic link; remove it or choose another path")
    for parent in p.absolute().parents:
        try:
            st = parent.stat()
        except FileNotFoundError:
            continue
        except NotADirectoryError:
            continue  # a deeper ancestor is a file: reported when the loop reaches it
        except OSError as exc:
            err = os_error_to_user(exc, parent)
            if err is None:
                raise
            raise err from None
        if not stat.S_ISDIR(st.st_mode):
            raise OutputPathError(f"{text}: {parent} is a regular file, not a directory; choose another path")
        break  # the nearest existing ancestor is a directory
    store = store_root_above(p)
    if store is not None:
        raise OutputPathError(
            f"{text} lies inside the store at {store} (a dcreg store); write outputs somewhere outside it"
        )
    return p


def store_root_above(path: str | Path) -> Path | None:
    """The dcreg store directory (one holding ``blobs/sha256`` and ``repos``) that ``path``
    (resolved through symlinks) lies in, or None. Writing there would corrupt the store."""
    try:
        real = Path(os.path.realpath(path))
    except (OSError, ValueError):
        return None
    for d in (real, *real.parents):
        if (d / "blobs" / "sha256").is_dir() and (d / "repos").is_dir():
            return d
    return None


def refuse_inside(path: str | Path, root: str | Path, what: str) -> None:
    """Raise OutputPathError if ``path`` (resolved through symlinks) lies inside ``root``."""
    try:
        real_root = Path(os.path.realpath(root))
        real = Path(os.path.realpath(path))
    except (OSError, ValueError):
        return
    if real == real_root or real_root in real.parents:
        raise OutputPathError(
            f"{path} lies inside {what} ({real_root}); write the output somewhere outside it"
        )


def is_writable_dir(path: str | Path) -> bool:
    """Whether new entries can be created in directory ``path`` (False on read-only filesystems)."""
    try:
        return os.access(path, os.W_OK | os.X_OK)
    except (OSError, ValueError):
        return False
