"""Read and write ``data.safetensors`` without torch.

Writing goes through the ``safetensors`` library. Reading parses the header ourselves first so
that a hostile file (huge header, overlapping or out-of-range offsets, unknown dtypes) is
refused with a clear error before any tensor is touched; tensors are then memory-mapped with
numpy, so loading an artifact costs nothing until a tensor is used.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import JSONFormatError, SafetensorsFormatError
from .fsio import default_file_mode
from .jsonsafe import loads_bounded

#: Cap on the JSON header. Metadata with a few thousand class names fits in far less; a larger
#: header is a malformed or hostile file.
MAX_HEADER_BYTES = 8 * 1024 * 1024

#: safetensors dtype -> (numpy dtype of the stored bytes, item size). BF16 has no numpy dtype:
#: its raw 16-bit words are read as uint16 and widened to float32 on access.
DTYPES: dict[str, tuple[str, int]] = {
    "F64": ("<f8", 8),
    "F32": ("<f4", 4),
    "F16": ("<f2", 2),
    "BF16": ("<u2", 2),
    "I64": ("<i8", 8),
    "I32": ("<i4", 4),
    "I16": ("<i2", 2),
    "I8": ("i1", 1),
    "U8": ("u1", 1),
    "BOOL": ("?", 1),
}
FLOAT_DTYPES = {"F64", "F32", "F16", "BF16"}
_NUMPY_TO_ST = {
    "float64": "F64",
    "float32": "F32",
    "float16": "F16",
    "int64": "I64",
    "int32": "I32",
    "int16": "I16",
    "int8": "I8",
    "uint8": "U8",
    "bool": "BOOL",
}
METADATA_KEY = "dcreg"


@dataclass(frozen=True)
class TensorInfo:
    """One tensor's entry in a safetensors header."""

    name: str
    dtype: str  # safetensors dtype string, e.g. "F32"
    shape: tuple[int, ...]
    begin: int  # byte offsets relative to the start of the data section
    end: int

    @property
    def numel(self) -> int:
        out = 1
        for d in self.shape:  # exact: np.prod in int64 wraps
            out *= d
        return out


@dataclass(frozen=True)
class SafetensorsHeader:
    """A parsed and checked safetensors header."""

    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]
    data_offset: int  # absolute file offset of the data section


#: Most dimensions a tensor may have (dcreg tensors have at most 4; torch allows 64).
MAX_RANK = 16
_ENTRY_KEYS = {"dtype", "shape", "data_offsets"}


def _exact_int(value: Any) -> bool:
    """A JSON integer: Python ``int`` but not ``bool`` (``true`` is not a dimension)."""
    return type(value) is int


def read_header(path: str | Path, max_header_bytes: int = MAX_HEADER_BYTES) -> SafetensorsHeader:
    """Parse and check the header of a safetensors file; raise SafetensorsFormatError if bad.

    What this accepts is a subset of what the ``safetensors`` library reads: exact integers,
    ``begin <= end``, every tensor's byte span equal to ``prod(shape) * itemsize`` (exact
    arithmetic), spans tiling the data section with no gap or overlap, and every shape's
    product (zeros counted as ones) within the data section, so no size can overflow anywhere.
    """
    path = Path(path)
    field = "data.safetensors"
    size = path.stat().st_size
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise SafetensorsFormatError(field, "file is shorter than the 8-byte header length")
        (n,) = struct.unpack("<Q", raw)
        if n > max_header_bytes:
            raise SafetensorsFormatError(
                field,
                f"header is {n} bytes, above the {max_header_bytes}-byte cap",
                "the file is corrupt or not a dcreg artifact",
            )
        if 8 + n > size:
            raise SafetensorsFormatError(field, "header length points past the end of the file")
        text = f.read(n)
    if not text.startswith(b"{"):
        raise SafetensorsFormatError(field, "header is not a JSON object (it does not start with '{')")
    try:
        header = loads_bounded(text, "header", max_bytes=max_header_bytes)
    except JSONFormatError as exc:
        raise SafetensorsFormatError(field, exc.problem, exc.fix) from None
    if not isinstance(header, dict):
        raise SafetensorsFormatError(field, "header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise SafetensorsFormatError(field, "__metadata__ must map strings to strings")
    data_len = size - 8 - n
    tensors: dict[str, TensorInfo] = {}
    for name, entry in header.items():
        tensors[name] = _tensor_info(name, entry, data_len)
    # Every tensor, extras included, must tile the data section exactly: sorted by offsets,
    # each begins where the previous ended and the last ends at the end of the file.
    spans = sorted((t.begin, t.end, t.name) for t in tensors.values())
    cursor = 0
    for begin, end, name in spans:
        if begin != cursor:
            raise SafetensorsFormatError(
                f"tensor {name!r}", "data offsets overlap or leave a hole", "rewrite the file"
            )
        cursor = end
    if cursor != data_len:
        raise SafetensorsFormatError(
            field,
            f"tensors cover {cursor} bytes but the data section has {data_len}",
            "the file is truncated or has trailing bytes",
        )
    return SafetensorsHeader(tensors, metadata, 8 + n)


def _tensor_info(name: str, entry: Any, data_len: int) -> TensorInfo:
    where = f"tensor {name!r}"
    if not isinstance(entry, dict):
        raise SafetensorsFormatError(where, "header entry is not an object")
    if set(entry) != _ENTRY_KEYS:
        raise SafetensorsFormatError(
            where, f"header entry must have exactly dtype, shape and data_offsets, found {sorted(entry)}"
        )
    dtype = entry["dtype"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise SafetensorsFormatError(where, f"unsupported dtype {dtype!r}")
    itemsize = DTYPES[dtype][1]
    shape = entry["shape"]
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_RANK
        or not all(_exact_int(d) and d >= 0 for d in shape)
    ):
        raise SafetensorsFormatError(
            where, f"bad shape {str(shape)[:80]} (need at most {MAX_RANK} non-negative integers)"
        )
    # Exact Python integers cannot wrap. Bounding the product with zeros read as ones bounds
    # every dimension and every partial product (what other readers compute in fixed width).
    bound = itemsize
    for d in shape:
        bound *= max(d, 1)
        if bound > data_len:
            raise SafetensorsFormatError(
                where,
                f"shape {shape} x {itemsize}-byte {dtype} is larger than the {data_len}-byte data section",
            )
    offsets = entry["data_offsets"]
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_exact_int(o) and 0 <= o <= data_len for o in offsets)
    ):
        raise SafetensorsFormatError(
            where,
            f"bad data_offsets {str(offsets)[:80]} (need two "
            f"integers within the {data_len}-byte data section)",
        )
    begin, end = offsets
    if begin > end:
        raise SafetensorsFormatError(where, f"data_offsets begin {begin} after end {end}")
    numel = 1
    for d in shape:
        numel *= d
    if end - begin != numel * itemsize:
        raise SafetensorsFormatError(
            where,
            f"byte span {end - begin} does not match shape "
            f"{shape} x {itemsize}-byte {dtype} = {numel * itemsize}",
        )
    return TensorInfo(name, dtype, tuple(shape), begin, end)


class SafetensorsReader:
    """Memory-mapped, checked access to the tensors of one safetensors file."""

    def __init__(self, path: str | Path, max_header_bytes: int = MAX_HEADER_BYTES):
        self.path = Path(path)
        self.header = read_header(self.path, max_header_bytes)
        self._mmap: np.memmap | None = None

    @property
    def tensors(self) -> dict[str, TensorInfo]:
        return self.header.tensors

    def raw(self, name: str) -> np.ndarray:
        """The stored array (BF16 as raw uint16 words), memory-mapped, read-only."""
        info = self.header.tensors[name]
        if info.numel == 0:
            return np.zeros(info.shape, dtype=DTYPES[info.dtype][0])
        if self._mmap is None:
            self._mmap = np.memmap(self.path, dtype=np.uint8, mode="r", offset=self.header.data_offset)
        buf = self._mmap[info.begin : info.end]
        return buf.view(DTYPES[info.dtype][0]).reshape(info.shape)

    def numpy(self, name: str) -> np.ndarray:
        """The tensor as numpy; BF16 is widened to float32 (exactly)."""
        info = self.header.tensors[name]
        arr = self.raw(name)
        if info.dtype == "BF16":
            return (arr.astype(np.uint32) << 16).view(np.float32)
        return arr

    def all_finite(self, name: str, chunk_elems: int = 1 << 22) -> bool:
        """Whether a float tensor has no NaN/Inf, checked in chunks to bound memory."""
        if self.header.tensors[name].dtype not in FLOAT_DTYPES:
            return True
        flat = self.raw(name).reshape(-1)
        is_bf16 = self.header.tensors[name].dtype == "BF16"
        for start in range(0, flat.size, chunk_elems):
            part = flat[start : start + chunk_elems]
            if is_bf16:
                part = (part.astype(np.uint32) << 16).view(np.float32)
            if not np.isfinite(part).all():
                return False
        return True


def dtype_name(array: Any) -> str:
    """safetensors dtype string of a numpy array or torch tensor."""
    name = str(array.dtype).replace("torch.", "")
    if name == "bfloat16":
        return "BF16"
    if name not in _NUMPY_TO_ST:
        raise SafetensorsFormatError("tensor", f"dtype {name} cannot be stored")
    return _NUMPY_TO_ST[name]


def write_safetensors(path: str | Path, tensors: Mapping[str, Any], metadata_json: str) -> None:
    """Write ``tensors`` (numpy arrays or torch tensors) with one ``dcreg`` metadata key.

    Uses safetensors.torch when any tensor is a torch tensor (needed for bfloat16), else
    safetensors.numpy, so registry-only paths never import torch. Writes then fsyncs.
    """
    meta = {METADATA_KEY: metadata_json}
    if any(type(t).__module__.startswith("torch") for t in tensors.values()):
        import torch
        from safetensors.torch import save_file as save_torch

        as_torch = {
            k: (v if isinstance(v, torch.Tensor) else torch.from_numpy(np.asarray(v)))
            .detach()
            .cpu()
            .contiguous()
            for k, v in tensors.items()
        }
        save_torch(as_torch, str(path), metadata=meta)
    else:
        from safetensors.numpy import save_file as save_numpy

        # np.require keeps 0-d arrays 0-d (ascontiguousarray would make a scalar lr [1]).
        save_numpy({k: np.require(v, requirements="C") for k, v in tensors.items()}, str(path), metadata=meta)
    # safetensors creates the file 0600 (its temp-file write); give it the mode any new file of
    # this process gets, so a shared store or pulled set is readable as the user's umask intends
    os.chmod(path, default_file_mode())
    with open(path, "rb+") as f:
        os.fsync(f.fileno())
