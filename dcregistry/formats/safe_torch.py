"""The one place dcregistry reads a pickled ``.pt`` file, and it never unpickles arbitrary objects.

``torch.load(path, map_location="cpu", weights_only=True)`` only: torch's restricted unpickler
rebuilds tensors, containers and primitive values and refuses every other global (``os.system``,
custom classes, ...) before calling it. The only globals added to its allowlist are numpy's scalar
and dtype constructors, because the DC/DSA/DM code stores its reported accuracies
(``accs_all_exps``) as numpy float64 scalars: those rebuild a number from raw bytes and call
nothing else. Torch is imported here, lazily, on first use.
"""

from __future__ import annotations

import re
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ImportFormatError, UnsafeFileError, UserError
from .limits import MAX_EXPANSION, SMALL_MEMBER_BYTES, ByteBudget, InputTooLargeError, check_expansion
from .pickle_scan import pickle_shape_problem

_GLOBAL_RE = re.compile(r"GLOBAL ([A-Za-z0-9_.]+)")
_MAX_RECORDS = 100_000
#: Globals a benign legacy torch file names (storages, tensor rebuilders, containers).
_LEGACY_SAFE_PREFIXES = (
    "torch.",
    "collections.OrderedDict",
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
    "numpy.dtype",
    "builtins.set",
    "builtins.frozenset",
)


class TorchMissingError(UserError):
    """A .pt file needs torch, which the registry-only install does not have."""


def import_torch(what: str = "reading .pt files") -> Any:
    """``torch``, or TorchMissingError saying which install adds it."""
    try:
        import torch
    except ImportError:
        raise TorchMissingError(
            f"{what} needs PyTorch, which this installation lacks: "
            "pip install 'dcregistry[harness]' (or torch); .npz files "
            "work without it"
        ) from None
    return torch


def _numpy_safe_globals() -> list[Callable[..., Any] | tuple[Callable[..., Any], str]]:
    """numpy scalar/dtype reconstructors, under both the numpy 1.x and 2.x module paths."""
    import numpy as np

    core = getattr(np, "_core", None) or np.core
    scalar = core.multiarray.scalar
    out: list[Callable[..., Any] | tuple[Callable[..., Any], str]] = [
        (scalar, "numpy.core.multiarray.scalar"),
        (scalar, "numpy._core.multiarray.scalar"),
        np.dtype,
    ]
    dtypes = getattr(np, "dtypes", None)
    for name in (
        "Float64DType",
        "Float32DType",
        "Float16DType",
        "Int64DType",
        "Int32DType",
        "Int16DType",
        "Int8DType",
        "UInt8DType",
        "BoolDType",
    ):
        if dtypes is not None and hasattr(dtypes, name):
            out.append(getattr(dtypes, name))
    return out


def unsafe_message(path: str | Path, detail: str = "") -> str:
    """The one-line refusal for a pickle that needs arbitrary globals."""
    name = Path(path).name
    what = f" ({detail})" if detail else ""
    return (
        f"{name}: refusing to load: the file contains arbitrary Python objects{what} and will "
        "not be unpickled (unpickling can run code). If you trust it, convert it in a trusted "
        "environment: obj = torch.load(path, weights_only=False), save its tensors with "
        "numpy.savez('set.npz', images=..., labels=...) (or safetensors), then import "
        "that .npz (format npz)"
    )


def _check_zip_sizes(path: Path, budget: ByteBudget) -> None:
    """Refuse a torch zip whose records declare more bytes than the file and the cap allow
    (torch allocates each record at its declared size before reading it), or whose pickle builds
    objects too deep or too shared to hash and print safely (checked by parsing, not loading)."""
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        if len(infos) > _MAX_RECORDS:
            raise ImportFormatError(
                f"{path.name}: holds {len(infos)} records; refusing a file with that many"
            )
        for info in infos:
            if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
                raise ImportFormatError(
                    f"{path.name}: record {info.filename!r} declares "
                    f"{info.file_size} bytes but stores {info.compress_size}"
                )
            check_expansion(path.name, f"record {info.filename!r}", info.compress_size, info.file_size)
            budget.take(info.file_size, f"record {info.filename!r}")
        pickles = [i for i in infos if i.filename.rsplit("/", 1)[-1] == "data.pkl"]
        for info in pickles:
            problem = pickle_shape_problem(zf.read(info))
            if problem is not None:
                raise ImportFormatError(
                    f"{path.name}: its pickle builds {problem}; refusing to "
                    "load it (the file is corrupt or hostile)"
                )


def _all_pickle_globals(path: Path, max_bytes: int = 64 << 20) -> list[str] | None:
    """Globals named by every pickle stored back to back in ``path`` (torch's legacy format is
    several), found by parsing opcodes only; None when the file does not start with a pickle."""
    import io
    import pickletools

    with open(path, "rb") as f:
        stream = io.BytesIO(f.read(max_bytes))
    names: list[str] = []
    strings: list[str] = []
    first = True
    while stream.tell() < len(stream.getbuffer()):
        try:
            for op, arg, _ in pickletools.genops(stream):
                if op.name in ("GLOBAL", "INST"):
                    names.append(str(arg).replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    names.append(f"{strings[-2]}.{strings[-1]}")
                elif isinstance(arg, str):
                    strings.append(arg)
        except Exception:  # the raw storage bytes after the pickles, or garbage
            if first:
                return None
            break
        first = False
    return names


def _legacy_refusal(path: Path) -> UserError:
    names = _all_pickle_globals(path)
    if names is None:
        return ImportFormatError(
            f"{path.name}: not a PyTorch file (neither a torch.save zip archive nor a pickle)"
        )
    unsafe = [n for n in names if not n.startswith(_LEGACY_SAFE_PREFIXES)]
    if unsafe:
        return UnsafeFileError(unsafe_message(path, f"it needs {', '.join(unsafe[:3])}"))
    return ImportFormatError(
        f"{path.name}: uses torch's legacy (pre-1.6, non-zip) format, whose storage sizes cannot "
        "be checked before torch allocates them; in a trusted environment re-save it with "
        "torch.save(torch.load(path, weights_only=True), path) (a current torch writes the zip "
        "format) and import that"
    )


def safe_torch_load(path: str | Path, budget: ByteBudget | None = None) -> Any:
    """Load a ``.pt`` file with ``torch.load(weights_only=True)``; never unpickle anything else.

    The zip records' declared sizes are checked against the file and ``budget`` first (torch
    allocates them before reading). Raises UnsafeFileError when the pickle needs globals outside
    torch's weights-only allowlist (nothing from the file has run), ImportFormatError when the
    file is not a torch zip file, InputTooLargeError when it declares too much data.
    """
    path = Path(path)
    if not path.is_file():
        raise ImportFormatError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise _legacy_refusal(path)
    try:
        _check_zip_sizes(path, budget or ByteBudget(path.name))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ImportFormatError(f"{path.name}: not a readable torch zip file ({exc})") from None

    torch = import_torch()

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.serialization.safe_globals(_numpy_safe_globals()):
                return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for unreadable files
        text = str(exc)
        if "Weights only load failed" in text:
            found = _GLOBAL_RE.search(text)
            if found:
                raise UnsafeFileError(unsafe_message(path, f"it needs {found.group(1)}")) from None
            raise UnsafeFileError(
                unsafe_message(path, "it uses pickle features outside torch's weights-only subset")
            ) from None
        first = text.strip().splitlines()[0][:160] if text.strip() else type(exc).__name__
        raise ImportFormatError(
            f"{path.name}: not a PyTorch file that torch.load can read ({type(exc).__name__}: {first})"
        ) from None


def tensor_bytes(t: Any, what: str, budget: ByteBudget) -> int:
    """Check a loaded tensor before it is materialised: dense, on the CPU, and its full size
    (numel x itemsize) within ``budget`` and not far larger than the storage it views (a zero-
    stride view of 4 bytes can claim gigabytes). Returns the bytes it will take."""
    import torch

    if t.layout != torch.strided:
        raise ImportFormatError(
            f"{what}: is a {str(t.layout).replace('torch.', '')} tensor; "
            "only dense tensors can be imported (call .to_dense() first)"
        )
    if t.is_meta or t.device.type != "cpu":
        raise ImportFormatError(
            f"{what}: is a tensor on the {t.device.type!r} device, which has no data; save the real tensor"
        )
    nbytes: int = t.numel() * t.element_size()
    stored = t.untyped_storage().nbytes()
    if nbytes > SMALL_MEMBER_BYTES and nbytes > MAX_EXPANSION * max(stored, 1):
        raise InputTooLargeError(
            f"{what}: a view of {stored} stored bytes claims {nbytes} bytes "
            "(zero or overlapping strides); save a contiguous tensor"
        )
    budget.take(nbytes, f"the tensor {what}")
    return nbytes


def pickle_globals(path: str | Path, max_bytes: int = 64 << 20) -> list[str] | None:
    """The globals the first pickle in ``path`` would import, found by *parsing* its opcodes
    (``pickletools.genops`` executes nothing); None when the file does not start with a pickle."""
    import io
    import pickletools

    with open(path, "rb") as f:
        data = f.read(max_bytes)
    names: list[str] = []
    strings: list[str] = []
    try:
        for op, arg, _ in pickletools.genops(io.BytesIO(data)):
            if op.name == "GLOBAL" or op.name == "INST":
                names.append(str(arg).replace(" ", "."))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                names.append(f"{strings[-2]}.{strings[-1]}")
            elif isinstance(arg, str):
                strings.append(arg)
            if op.name == "STOP":
                break
    except Exception:  # not a pickle, or truncated: decide from what was parsed
        if not names and not strings:
            return None
    return names
