"""Reading ``.npz`` archives without unpickling anything and without trusting declared sizes
(shared by ``kip-npz`` and ``npz``).

``numpy.load`` on an ``.npz`` decompresses a member into an array whose size comes from the
member's ``.npy`` header, so a 2 MB file of compressed zeros can ask for gigabytes. Here each
member's ``.npy`` header is read first (a few hundred bytes); its shape x itemsize must equal the
member's declared uncompressed size, stay within the input cap and not be out of proportion to
the compressed bytes; only then is exactly that much memory reserved and filled. Members are read
on first access, so arrays an importer does not use are never decompressed.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import cast

import numpy as np

from ...errors import ImportFormatError, UnsafeFileError
from ..limits import ByteBudget, InputTooLargeError, check_expansion

_NPY_MAGIC = b"\x93NUMPY"
#: Longest ``.npy`` header read (numpy's own default limit is 10,000 bytes).
_MAX_NPY_HEADER = 10_000
_MAX_MEMBERS = 4096


def _pickle_refusal(name: str) -> UnsafeFileError:
    return UnsafeFileError(
        f"{name}: is a pickle, not an .npz archive, and will not be unpickled (unpickling can run "
        "code); in a trusted environment load it and save its arrays with numpy.savez, then "
        "import the .npz"
    )


class NpzArchive(Mapping[str, np.ndarray]):
    """The arrays of one ``.npz`` file by name, each checked and read on first access."""

    def __init__(self, path: Path, budget: ByteBudget | None = None):
        self.path = path
        self.where = path.name
        self.budget = budget or ByteBudget(self.where)
        self._cache: dict[str, np.ndarray] = {}
        with open(path, "rb") as f:
            head = f.read(8)
        if head.startswith(_NPY_MAGIC):
            raise ImportFormatError(
                f"{self.where}: is a single NumPy array (.npy); this importer expects an .npz "
                "archive holding an 'images' array and a 'labels' (or 'soft_labels') array: "
                "numpy.savez('set.npz', images=images, labels=labels)"
            )
        if head[:1] == b"\x80":
            raise _pickle_refusal(self.where)
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise ImportFormatError(
                f"{self.where}: not a readable .npz file (not a zip archive: {exc})"
            ) from None
        infos = self._zip.infolist()
        if len(infos) > _MAX_MEMBERS:
            raise ImportFormatError(
                f"{self.where}: has {len(infos)} members; an .npz set holds a handful of arrays"
            )
        self._members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            if info.is_dir():
                continue
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if name in self._members:
                raise ImportFormatError(f"{self.where}: array {name!r} appears twice")
            self._members[name] = info

    # Mapping protocol: names are free, values are read (and checked) on first access.
    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, name: object) -> bool:
        return name in self._members

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._cache:
            self._cache[name] = self._read(name)
        return self._cache[name]

    def close(self) -> None:
        self._zip.close()

    def header(self, name: str) -> tuple[tuple[int, ...], np.dtype, bool, int]:
        """(shape, dtype, fortran_order, header bytes) of member ``name``, reading only its header."""
        info = self._members[name]
        try:
            with self._open(info) as f:
                return self._read_header(f, name)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise ImportFormatError(
                f"{self.where}: array {name!r} is unreadable ({type(exc).__name__}: {exc})"
            ) from None

    def dtype_kind(self, name: str) -> str:
        """numpy dtype kind of array ``name`` (from its header; no data is read)."""
        return self.header(name)[1].kind

    def _open(self, info: zipfile.ZipInfo) -> zipfile.ZipExtFile:
        # what ZipFile.open returns in read mode (typeshed says IO[bytes], which has no readinto)
        return cast(zipfile.ZipExtFile, self._zip.open(info))

    def _read_header(self, f: zipfile.ZipExtFile, name: str) -> tuple[tuple[int, ...], np.dtype, bool, int]:
        from numpy.lib import format as npy

        magic = f.read(len(_NPY_MAGIC))
        if magic != _NPY_MAGIC:
            if magic[:1] == b"\x80":
                raise UnsafeFileError(
                    f"{self.where}: array {name!r} is a pickle and will not be unpickled; save "
                    "plain numeric arrays (numpy.savez) and import again"
                )
            raise ImportFormatError(f"{self.where}: member {name!r} is not a .npy array")
        version = tuple(f.read(2))
        if version == (1, 0):
            shape, fortran, dtype = npy.read_array_header_1_0(f, max_header_size=_MAX_NPY_HEADER)
        elif version == (2, 0):
            shape, fortran, dtype = npy.read_array_header_2_0(f, max_header_size=_MAX_NPY_HEADER)
        else:
            raise ImportFormatError(
                f"{self.where}: array {name!r} uses .npy format version "
                f"{version}; save it with numpy.savez (version 1.0)"
            )
        if dtype.hasobject:
            raise UnsafeFileError(
                f"{self.where}: array {name!r} is an object array (pickled Python objects) and "
                "will not be unpickled; save plain numeric arrays (numpy.savez with float/int "
                "arrays) and import again"
            )
        if not all(type(d) is int and d >= 0 for d in shape):
            raise ImportFormatError(f"{self.where}: array {name!r} has a bad shape {shape}")
        return tuple(shape), dtype, bool(fortran), f.tell()

    def _read(self, name: str) -> np.ndarray:
        info = self._members[name]
        try:
            with self._open(info) as f:
                shape, dtype, fortran, header_len = self._read_header(f, name)
                count = 1
                for d in shape:  # exact integers: no wrap-around
                    count *= d
                nbytes = count * dtype.itemsize
                if header_len + nbytes != info.file_size:
                    raise ImportFormatError(
                        f"{self.where}: array {name!r} declares {list(shape)} {dtype} "
                        f"({nbytes} bytes) but its member holds {info.file_size - header_len}"
                    )
                check_expansion(self.where, f"array {name!r}", info.compress_size, info.file_size)
                self.budget.take(nbytes, f"array {name!r}")
                buf = bytearray(nbytes)
                got = f.readinto(memoryview(buf)) if nbytes else 0
                while got < nbytes:  # readinto may return short counts on compressed members
                    more = f.readinto(memoryview(buf)[got:])
                    if not more:
                        raise ImportFormatError(f"{self.where}: array {name!r} is truncated")
                    got += more
        except (ImportFormatError, UnsafeFileError, InputTooLargeError):
            raise
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise ImportFormatError(
                f"{self.where}: array {name!r} is unreadable ({type(exc).__name__}: {exc})"
            ) from None
        arr = np.frombuffer(buf, dtype=dtype)
        return arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)


def load_npz(path: Path) -> NpzArchive:
    """The arrays of an ``.npz`` file (read lazily, checked), with pickles and object arrays refused."""
    if path.is_dir():
        raise ImportFormatError(f"{path}: is a directory; expected an .npz file")
    return NpzArchive(path)


def require_array(arrays: Mapping[str, np.ndarray], key: str, where: str, fmt: str) -> np.ndarray:
    if key not in arrays:
        raise ImportFormatError(
            f"{where}: has no {key!r} array (found: "
            f"{', '.join(sorted(arrays)) or 'nothing'}); {fmt} needs "
            "'images' and 'labels'"
        )
    return arrays[key]
