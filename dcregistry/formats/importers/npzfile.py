"""Reading ``.npz`` archives without unpickling anything (shared by ``kip-npz`` and ``npz``)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from ...errors import ImportFormatError, UnsafeFileError

def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, with pickles and object arrays refused."""
    if path.is_dir():
        raise ImportFormatError(f"{path}: is a directory; expected an .npz file")
    try:
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files"):
                raise ImportFormatError(f"{path.name}: is a single .npy array; save images and "
                                        "labels together with numpy.savez")
            out = {}
            for key in z.files:
                try:
                    out[key] = z[key]
                except ValueError as exc:
                    if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
                        raise UnsafeFileError(
                            f"{path.name}: array {key!r} is an object array (pickled Python "
                            "objects) and will not be unpickled; save plain numeric arrays "
                            "(numpy.savez with float/int arrays) and import again") from None
                    raise ImportFormatError(f"{path.name}: array {key!r} is unreadable "
                                            f"({exc})") from None
            return out
    except (ImportFormatError, UnsafeFileError):
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "pickled" in str(exc):
            raise UnsafeFileError(
                f"{path.name}: is a pickle, not an .npz archive, and will not be unpickled "
                "(unpickling can run code); in a trusted environment load it and save its "
                "arrays with numpy.savez, then import the .npz") from None
        raise ImportFormatError(f"{path.name}: not a readable .npz file ({exc})") from None
    except (OSError, EOFError) as exc:
        raise ImportFormatError(f"{path.name}: not a readable .npz file ({exc})") from None
    except Exception as exc:  # zipfile.BadZipFile and friends
        raise ImportFormatError(f"{path.name}: not a readable .npz file "
                                f"({type(exc).__name__}: {exc})") from None


def require_array(arrays: Mapping[str, np.ndarray], key: str, where: str, fmt: str) -> np.ndarray:
    if key not in arrays:
        raise ImportFormatError(f"{where}: has no {key!r} array (found: "
                                f"{', '.join(sorted(arrays)) or 'nothing'}); {fmt} needs "
                                "'images' and 'labels'")
    return arrays[key]
