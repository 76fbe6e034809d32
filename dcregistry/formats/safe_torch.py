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
from pathlib import Path
from typing import Any

from ..errors import ImportFormatError, UnsafeFileError, UserError

_GLOBAL_RE = re.compile(r"GLOBAL ([A-Za-z0-9_.]+)")


class TorchMissingError(UserError):
    """A .pt file needs torch, which the registry-only install does not have."""


def import_torch(what: str = "reading .pt files") -> Any:
    """``torch``, or TorchMissingError saying which install adds it."""
    try:
        import torch
    except ImportError:
        raise TorchMissingError(f"{what} needs PyTorch, which this installation lacks: "
                                "pip install 'dcregistry[harness]' (or torch); .npz files "
                                "work without it") from None
    return torch


def _numpy_safe_globals() -> list:
    """numpy scalar/dtype reconstructors, under both the numpy 1.x and 2.x module paths."""
    import numpy as np

    core = getattr(np, "_core", None) or np.core
    scalar = core.multiarray.scalar
    out: list = [(scalar, "numpy.core.multiarray.scalar"),
                 (scalar, "numpy._core.multiarray.scalar"), np.dtype]
    dtypes = getattr(np, "dtypes", None)
    for name in ("Float64DType", "Float32DType", "Float16DType", "Int64DType", "Int32DType",
                 "Int16DType", "Int8DType", "UInt8DType", "BoolDType"):
        if dtypes is not None and hasattr(dtypes, name):
            out.append(getattr(dtypes, name))
    return out


def unsafe_message(path: str | Path, detail: str = "") -> str:
    """The one-line refusal for a pickle that needs arbitrary globals."""
    name = Path(path).name
    what = f" ({detail})" if detail else ""
    return (f"{name}: refusing to load: the file contains arbitrary Python objects{what} and will "
            "not be unpickled (unpickling can run code). If you trust it, convert it in a trusted "
            "environment: obj = torch.load(path, weights_only=False), save its tensors with "
            "numpy.savez('set.npz', images=..., labels=...) (or safetensors), then run "
            "`dcreg import set.npz --format npz ...`")


def safe_torch_load(path: str | Path) -> Any:
    """Load a ``.pt`` file with ``torch.load(weights_only=True)``; never unpickle anything else.

    Raises UnsafeFileError when the pickle needs globals outside torch's weights-only allowlist
    (nothing from the file has run), ImportFormatError when the file is not a torch file at all.
    """
    torch = import_torch()

    path = Path(path)
    if not path.is_file():
        raise ImportFormatError(f"{path}: no such file")
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
            # The restricted unpickler stopped at an opcode it does not support (a plain
            # pickle.dump file, or bytes that are no pickle at all): parse, never run, to tell.
            names = pickle_globals(path)
            if names is None:
                raise ImportFormatError(f"{path.name}: not a PyTorch file (neither a torch.save "
                                        "zip archive nor a pickle)") from None
            detail = (f"it needs {', '.join(names[:3])}" if names
                      else "it uses pickle features outside torch's weights-only subset")
            raise UnsafeFileError(unsafe_message(path, detail)) from None
        first = text.strip().splitlines()[0][:160] if text.strip() else type(exc).__name__
        raise ImportFormatError(f"{path.name}: not a PyTorch file that torch.load can read "
                                f"({type(exc).__name__}: {first})") from None


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
