"""CIFAR-10 / CIFAR-100 from the original "python version" batches, unpickled safely.

Layouts: ``<root>/cifar-10-batches-py/{data_batch_1..5, test_batch}`` and
``<root>/cifar-100-python/{train, test}``. Each file is a pickled dict (keys are bytes, as the
files were written by Python 2): ``b"data"`` uint8 ``[N, 3072]`` (channel-major 3x32x32 rows),
``b"labels"`` (CIFAR-10) or ``b"fine_labels"`` (CIFAR-100; the 100 fine classes are used).

These files are pickles, and a pickle can run arbitrary code when loaded. They are therefore
read with :class:`SafeUnpickler`, whose ``find_class`` resolves only the few globals a numpy
array inside builtin containers needs and raises
:class:`~dcregistry.errors.UnsafeFileError` for anything else, before it is called.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from dcregistry.catalog import DatasetInfo
from dcregistry.errors import UnsafeFileError
from dcregistry.formats.pickle_scan import pickle_shape_problem

from .base import LOADERS, DatasetFormatError, RawSplit, locate


def _latin1_encode(obj: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as Python 3 protocol-2 pickles use it for bytes, latin-1 only."""
    if not isinstance(obj, str) or encoding.lower().replace("_", "-") not in ("latin1", "latin-1"):
        raise UnsafeFileError(
            f"pickle calls _codecs.encode with encoding {encoding!r}; only latin1 is allowed"
        )
    return obj.encode("latin-1", errors)


def _allowed_globals() -> dict[tuple[str, str], Any]:
    try:  # numpy >= 2
        from numpy._core import multiarray as _ma
        from numpy._core import numeric as _num
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray as _ma  # type: ignore[no-redef]
        from numpy.core import numeric as _num  # type: ignore[no-redef]
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "_reconstruct")] = _ma._reconstruct
        allowed[(mod, "scalar")] = _ma.scalar
    for mod in ("numpy.core.numeric", "numpy._core.numeric"):
        if hasattr(_num, "_frombuffer"):
            allowed[(mod, "_frombuffer")] = _num._frombuffer
    return allowed


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays and builtin containers and nothing else.

    Allowed globals: ``numpy.ndarray``, ``numpy.dtype``, ``numpy[._]core.multiarray._reconstruct``
    and ``.scalar``, ``numpy[._]core.numeric._frombuffer`` (protocol 5 arrays) and a latin-1-only
    ``_codecs.encode`` (how Python 3 writes bytes at protocol 2). Every other global (``os.system``,
    ``builtins.eval``, ``subprocess.Popen`` ...) is refused with ``UnsafeFileError``; persistent ids
    are refused by the base class.
    """

    _ALLOWED: dict[tuple[str, str], Any] | None = None

    def __init__(self, file, *, source: str = "<pickle>", **kwargs):
        super().__init__(file, **kwargs)
        self.source = source
        if SafeUnpickler._ALLOWED is None:
            SafeUnpickler._ALLOWED = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        obj = (self._ALLOWED or {}).get((module, name))
        if obj is None:
            raise UnsafeFileError(
                f"{self.source}: refused to unpickle {module}.{name} (only numpy arrays and builtin "
                "containers are allowed; loading it could run code); this is not a genuine dataset file"
            )
        return obj


def safe_unpickle(path: Path) -> Any:
    """Unpickle ``path`` with :class:`SafeUnpickler` and ``encoding="bytes"`` (Python 2 files)."""
    data = path.read_bytes()
    problem = pickle_shape_problem(data)  # parsed, not run: deep or exponentially shared objects
    if problem is not None:
        raise DatasetFormatError(
            path, f"is a pickle that builds {problem}", "the file is corrupt or hostile; re-download it"
        )
    try:
        return SafeUnpickler(io.BytesIO(data), source=str(path), encoding="bytes").load()
    except UnsafeFileError:
        raise
    except Exception as exc:  # UnpicklingError, EOFError, ValueError, TypeError ...
        raise DatasetFormatError(path, f"is not a readable pickle: {type(exc).__name__}: {exc}") from None


def _get(d: dict[Any, Any], key: str) -> Any:
    for k in (key.encode(), key):
        if k in d:
            return d[k]
    raise KeyError(key)


def _flat_labels(labels: Any, n: int, label_key: str, path: Path) -> np.ndarray:
    """The labels as int64 [n], checked *before* conversion: a pickle can make a list whose
    entries are all the same nested list (memo references), which costs nothing to unpickle but
    expands to gigabytes in ``np.asarray``. Only a flat list/tuple of ``n`` ints, or a 1-D integer
    array of length ``n``, is accepted."""
    if isinstance(labels, np.ndarray):
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise DatasetFormatError(
                path,
                f"{label_key!r} is a {labels.dtype} array of shape "
                f"{list(labels.shape)}, expected {n} integers",
            )
    elif isinstance(labels, (list, tuple)):
        if len(labels) == n and not all(type(v) is int for v in labels):
            raise DatasetFormatError(path, f"{label_key!r} is not a flat list of integers")
    else:
        raise DatasetFormatError(
            path, f"{label_key!r} is a {type(labels).__name__}, expected a list of integers"
        )
    if len(labels) != n:
        raise DatasetFormatError(path, f"has {len(labels)} labels for {n} images")
    return np.asarray(labels, dtype=np.int64)


def read_cifar_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR batch file: ``(uint8 [N, 3, 32, 32], int64 [N])``."""
    obj = safe_unpickle(path)
    if not isinstance(obj, dict):
        raise DatasetFormatError(path, f"unpickles to {type(obj).__name__}, expected a dict")
    try:
        data, labels = _get(obj, "data"), _get(obj, label_key)
    except KeyError as exc:
        keys = sorted(k.decode() if isinstance(k, bytes) else str(k) for k in obj)
        raise DatasetFormatError(path, f"has no {exc.args[0]!r} entry (keys: {keys})") from None
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        desc = f"{data.dtype} {list(data.shape)}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DatasetFormatError(path, f"'data' is {desc}, expected uint8 [N, 3072]")
    labels = _flat_labels(labels, data.shape[0], label_key, path)
    return data.reshape(-1, 3, 32, 32), labels


def _cifar(folder: str, files: dict[str, list[str]], label_key: str, layout: str):
    def load(root: Path, split: str, info: DatasetInfo) -> RawSplit:
        base = root / folder
        paths = [base / f for f in files[split]]

        def parse() -> RawSplit:
            parts = [read_cifar_batch(p, label_key) for p in paths]
            images = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
            labels = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
            return RawSplit(images, labels, None, f"cifar-pickle:{base}")

        return locate(root, info, split, paths, parse, layout)

    return load


LOADERS.register(
    "cifar10",
    _cifar(
        "cifar-10-batches-py",
        {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
        "labels",
        "cifar-10-batches-py/ (data_batch_1..5, test_batch)",
    ),
)
LOADERS.register(
    "cifar100",
    _cifar(
        "cifar-100-python",
        {"train": ["train"], "test": ["test"]},
        "fine_labels",
        "cifar-100-python/ (train, test)",
    ),
)
