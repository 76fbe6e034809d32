"""Import published condensed sets into dcreg/1 artifacts and export artifacts to other formats.

Import formats (``IMPORTERS``): ``dc-pt`` (DC/DSA/DM ``res_*.pt``), ``mtt`` (MTT/DATM
``images_best.pt`` + ``labels_best.pt`` + ``lr_best.pt``), ``kip-npz``, ``npz``.
Export formats (``EXPORTERS``): ``pt``, ``npz``, ``png``, ``hf-datasets``.

Nothing is unpickled beyond ``torch.load(weights_only=True)`` (in :mod:`.safe_torch`, the only
``torch.load`` call site) and ``numpy.load(allow_pickle=False)``. Importing this package imports
nothing heavy (not even numpy): names are loaded on first use, and each format's module (one per
format, in ``importers/`` and ``exporters/``) only when that format is used.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "EXPORT_FORMATS": "exporters",
    "EXPORTERS": "exporters",
    "ExportResult": "exporters",
    "export_artifact": "exporters",
    "grid_image": "grid",
    "render_grid": "grid",
    "save_grid_png": "grid",
    "to_unit_images": "grid",
    "IMPORT_FORMATS": "importers",
    "IMPORTERS": "importers",
    "PIXEL_SPACES": "importers",
    "LAYOUTS": "importers",
    "ImportedSet": "importers",
    "ImportOptions": "importers",
    "ImportResult": "importers",
    "import_file": "importers",
    "read_sets": "importers",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
